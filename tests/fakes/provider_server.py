"""A scriptable fake AI provider: a real HTTP server speaking the OpenAI, Anthropic and Gemini wire formats.

It is the only "model" the tests and benchmarks talk to, so it is built on aiohttp's low-level server (no
router, no middlewares, no access log) and does almost nothing per request beyond building the reply.

    async with FakeProviderServer() as fake:
        fake.script(Script(error="rate_limit", retry_hint="retry-after"), Script(text="ok"))
        ...  # point a client at fake.base_url (+ "/v1" for OpenAI clients)

Requests that fail validation (no key, bad JSON, missing max_tokens...) are answered without consuming a
queued Script, so a script always applies to the next well-formed call.

Command line: python -m tests.fakes.provider_server --port 8900 [--text "..."] [--tps 20]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import logging
import sys
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self

from aiohttp import web

from ._formats import (
    MALFORMED,
    Reply,
    content_event,
    dumps,
    epilogue,
    error_body,
    error_status,
    full_body,
    models_list,
    prelude,
    prompt_words,
    retry_headers,
    split_words,
    stream_error_event,
)

log = logging.getLogger("fake_provider")
_FINISH = {"openai": "stop", "openai-fim": "stop", "anthropic": "end_turn", "gemini": "STOP"}
_ID_PREFIX = {"openai": "chatcmpl-fake", "openai-fim": "cmpl-fake", "anthropic": "msg_fake", "gemini": "fake"}
_SPLIT_PAUSE = 0.001  # long enough that the two halves of a split event reach the client as separate reads
_SSE_HEADERS = {"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
_JSON = "application/json"


@dataclass
class Script:
    """How the fake answers one request; queue them with FakeProviderServer.script()."""

    text: str = "Hello from the fake provider."
    chunks: list[str] | None = None  # explicit stream deltas; non-stream answers are their concatenation
    tokens_per_second: float | None = None  # None: as fast as possible; else sleep 1/tps between chunks
    first_byte_delay: float = 0.0  # seconds before the status line is sent
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)  # extra response headers
    body: Any = None  # raw body (dict -> JSON, str/bytes as is) for errors or to override a 200
    error: str | None = None  # rate_limit, auth, context_length, server_error, unavailable, overloaded
    retry_hint: str | None = None  # retry-after, openai-reset, anthropic-reset, gemini-retryinfo
    retry_after: float = 2.0
    cut_after: int | None = None  # stream: close after this many content chunks; non-stream: truncated body
    malformed: bool = False  # non-stream: invalid JSON with 200; stream: one invalid data line after chunk 1
    split_writes: bool = False  # stream: every event in two TCP writes split mid-line
    usage: tuple[int, int] | None = None  # (input, output); default: prompt words, number of chunks
    stream_error: str | None = None  # provider error type/status sent as an error event after chunk 1
    finish_reason: str | None = None  # default "stop" / "end_turn" / "STOP"


@dataclass
class RecordedRequest:
    format: str  # "openai" | "openai-fim" | "anthropic" | "gemini"
    path: str  # without the query string (see `query`)
    headers: Mapping[str, str]  # as received; case-insensitive lookup (aiohttp's CIMultiDictProxy)
    json: Any
    stream: bool
    query: Mapping[str, str] = field(default_factory=dict)


class FakeProviderServer:
    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, access_log: bool = False) -> None:
        self.host = host
        self.port = port
        self.default = Script()
        self.requests: list[RecordedRequest] = []
        self.record_requests = True  # benchmarks making millions of calls can turn this off
        self.models = ["fake-model", "fake-model-large"]
        self.disconnects = 0
        self.completed_streams = 0
        self._queue: deque[Script] = deque()
        self._disconnected = asyncio.Event()
        self._ids = itertools.count(1)
        self._access_log = access_log
        self._runner: web.ServerRunner | None = None
        self._stopping = False

    # --- lifecycle ----------------------------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def start(self) -> None:
        # handler_cancellation: a peer that hangs up mid-sleep (tps, first_byte_delay) cancels the handler at
        # once, so disconnects are seen without waiting for the next write.
        server = web.Server(
            self._handle,
            handler_cancellation=True,
            access_log=logging.getLogger("aiohttp.access") if self._access_log else None,
        )
        self._runner = web.ServerRunner(server, shutdown_timeout=0.25)
        await self._runner.setup()
        await web.TCPSite(self._runner, self.host, self.port).start()
        self.port = self._runner.addresses[0][1]
        self._stopping = False

    async def stop(self) -> None:
        if self._runner is not None:
            self._stopping = True  # handlers cancelled by the shutdown are not client disconnects
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    # --- scripting ----------------------------------------------------------------------------------------------

    def script(self, *scripts: Script) -> None:
        self._queue.extend(scripts)

    def reset(self) -> None:
        self._queue.clear()
        self.requests.clear()
        self.disconnects = 0
        self.completed_streams = 0
        self._disconnected.clear()
        self.default = Script()

    async def wait_disconnect(self, timeout: float = 5.0) -> None:
        """Return once a client hung up before the server finished answering (TimeoutError otherwise)."""
        await asyncio.wait_for(self._disconnected.wait(), timeout)

    def _saw_disconnect(self) -> None:
        self.disconnects += 1
        self._disconnected.set()

    # --- request handling ---------------------------------------------------------------------------------------

    async def _handle(self, request: web.BaseRequest) -> web.StreamResponse:
        try:
            return await self._route(request)
        except asyncio.CancelledError:
            if not self._stopping:
                self._saw_disconnect()
            raise

    async def _route(self, request: web.BaseRequest) -> web.StreamResponse:
        path, method, headers = request.path, request.method, request.headers
        stream = False
        if path == "/v1/chat/completions":
            fmt = "openai"
        elif path == "/v1/completions":
            fmt = "openai-fim"
        elif path == "/v1/messages":
            fmt = "anthropic"
        elif path.startswith(("/v1beta/models", "/v1/models/")):
            fmt = "gemini"
        else:  # /v1/models (OpenAI or Anthropic listing) and unknown paths: guess the caller from its key header
            fmt = "anthropic" if "x-api-key" in headers and "Authorization" not in headers else "openai"
        if fmt == "gemini":
            model, _, action = path.removeprefix("/v1beta").removeprefix("/v1").removeprefix("/models/").partition(":")
            stream = action == "streamGenerateContent"
            known = method == "POST" and action in ("generateContent", "streamGenerateContent")
            listing = method == "GET" and path == "/v1beta/models"
        else:
            known = method == "POST" and path in ("/v1/chat/completions", "/v1/completions", "/v1/messages")
            listing = method == "GET" and path == "/v1/models"
            model = ""

        body: Any = None
        bad_json = False
        if method == "POST":
            raw = await request.read()
            try:
                body = json.loads(raw)
            except ValueError:
                bad_json = True
            if isinstance(body, dict) and fmt != "gemini":
                stream = body.get("stream") is True
                model = str(body.get("model", ""))
        if self.record_requests:
            self.requests.append(RecordedRequest(fmt, path, headers, body, stream, request.query))

        if not known and not listing:
            return self._error(fmt, None, 404, f"Invalid URL ({method} {path})")
        denied = self._check_auth(fmt, headers, request.query)
        if denied is not None:
            return denied
        if listing:
            return web.Response(body=dumps(models_list(fmt, self.models)), content_type=_JSON)
        if bad_json or not isinstance(body, dict):
            return self._error(fmt, None, 400, "Could not parse the JSON body of the request.")
        problem = _missing_field(fmt, body)
        if problem:
            return self._error(fmt, None, 400, problem)

        s = self._queue.popleft() if self._queue else self.default
        if s.first_byte_delay:
            await asyncio.sleep(s.first_byte_delay)
        if s.error or s.status != 200:
            return self._scripted_error(fmt, s)
        if s.body is not None:
            ctype = "text/event-stream" if stream and isinstance(s.body, str | bytes) else _JSON
            return web.Response(body=_raw(s.body), content_type=ctype, headers=s.headers or None)

        pieces = list(s.chunks) if s.chunks is not None else split_words(s.text)
        inp, out = s.usage or (prompt_words(fmt, body), len(pieces))
        so = body.get("stream_options")
        reply = Reply(
            fmt,
            f"{_ID_PREFIX[fmt]}{next(self._ids)}",
            model,
            pieces,
            inp,
            out,
            s.finish_reason or _FINISH[fmt],
            isinstance(so, dict) and so.get("include_usage") is True,
        )
        if stream and (fmt != "gemini" or request.query.get("alt") == "sse"):
            return await self._stream(request, reply, s)
        if stream:  # Gemini without alt=sse streams one JSON array of response objects
            events = [content_event(reply, p, i == len(pieces) - 1) for i, p in enumerate(pieces)] + epilogue(reply)
            data = b"[" + b",\r\n".join(e[6:].rstrip() for e in events) + b"]"
        else:
            data = b'{"id":"broken","choices":[{"message":' if s.malformed else dumps(full_body(reply))
        if s.cut_after is not None:  # promise the whole body, send half of it, hang up
            resp = web.StreamResponse(headers=s.headers or None)
            resp.content_type = _JSON
            resp.content_length = len(data)
            await resp.prepare(request)
            await resp.write(data[: len(data) // 2])
            return _hang_up(request, resp)
        return web.Response(body=data, content_type=_JSON, headers=s.headers or None)

    async def _stream(self, request: web.BaseRequest, r: Reply, s: Script) -> web.StreamResponse:
        resp = web.StreamResponse(headers={**_SSE_HEADERS, **s.headers} if s.headers else _SSE_HEADERS)
        write: Callable[[bytes], Awaitable[None]] = resp.write
        if s.split_writes:

            async def write(data: bytes) -> None:
                mid = len(data) // 2
                await resp.write(data[:mid])
                await asyncio.sleep(_SPLIT_PAUSE)
                await resp.write(data[mid:])

        async def after_first_chunk() -> bool:  # True: the stream ends here (after an error event)
            if s.malformed:
                await write(MALFORMED[r.fmt])
            if s.stream_error:
                await write(stream_error_event(r.fmt, s.stream_error))
                return True
            return False

        pause = 1.0 / s.tokens_per_second if s.tokens_per_second else 0.0
        last = len(r.pieces) - 1
        try:
            await resp.prepare(request)
            for event in prelude(r):
                await write(event)
            for i, piece in enumerate(r.pieces):
                if i == s.cut_after:
                    return _hang_up(request, resp)
                if pause and i:
                    await asyncio.sleep(pause)
                await write(content_event(r, piece, i == last and s.cut_after is None))
                if i == 0 and await after_first_chunk():
                    break
            else:
                if s.cut_after is not None:
                    return _hang_up(request, resp)
                if last >= 0 or not await after_first_chunk():  # an empty answer still gets its error event
                    for event in epilogue(r):
                        await write(event)
            await resp.write_eof()
        except ConnectionError:  # aiohttp's ClientConnectionResetError: the peer hung up between writes
            self._saw_disconnect()
            return resp
        self.completed_streams += 1
        return resp

    def _check_auth(self, fmt: str, headers: Mapping[str, str], query: Mapping[str, str]) -> web.Response | None:
        if fmt == "anthropic":
            if not headers.get("x-api-key"):
                return self._error(fmt, "auth", 401, "x-api-key header is required")
            if not headers.get("anthropic-version"):
                return self._error(fmt, None, 400, "anthropic-version: header is required")
        elif fmt == "gemini":
            if not headers.get("x-goog-api-key") and not query.get("key"):
                return self._error(fmt, "missing_key", 403)
        else:
            auth = headers.get("Authorization", "")
            if not auth.startswith("Bearer ") or not auth[7:].strip():
                return self._error(fmt, "missing_key", 401)
        return None

    def _error(self, fmt: str, kind: str | None, status: int, message: str | None = None) -> web.Response:
        return web.Response(status=status, body=dumps(error_body(fmt, kind, status, message)), content_type=_JSON)

    def _scripted_error(self, fmt: str, s: Script) -> web.Response:
        status = s.status if s.status != 200 or not s.error else error_status(fmt, s.error)
        headers = {**retry_headers(s.retry_hint, s.retry_after), **s.headers}
        if s.body is None:
            data = dumps(error_body(fmt, s.error, status, None, s.retry_hint, s.retry_after))
        else:
            data = _raw(s.body)
        return web.Response(status=status, body=data, content_type=_JSON, headers=headers or None)


def _missing_field(fmt: str, body: dict[str, Any]) -> str | None:
    """The first required field the real API would reject the request for, as its error message."""
    if fmt == "anthropic":
        for name in ("model", "messages", "max_tokens"):
            if name not in body:
                return f"{name}: Field required"
    elif fmt == "gemini":
        if not isinstance(body.get("contents"), list) or not body["contents"]:
            return "* GenerateContentRequest.contents: contents is not specified"
    elif "model" not in body:
        return "you must provide a model parameter"
    elif fmt == "openai" and not isinstance(body.get("messages"), list):
        return "Missing required parameter: 'messages'."
    return None


def _raw(body: Any) -> bytes:
    return body if isinstance(body, bytes) else body.encode() if isinstance(body, str) else dumps(body)


def _hang_up(request: web.BaseRequest, resp: web.StreamResponse) -> web.StreamResponse:
    # close() (not abort()) so what was written still reaches the client, then FIN: the client sees a
    # chunked/Content-Length body that never completes. aiohttp's later write_eof fails with a
    # ConnectionError, which it swallows; nothing may be awaited between here and returning.
    resp.force_close()
    if request.transport is not None:
        request.transport.close()
    return resp


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.fakes.provider_server", description="Fake AI provider")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8900)
    parser.add_argument("--text", default=Script.text)
    parser.add_argument("--tps", type=float, default=None, help="stream chunks per second (default: no delay)")
    parser.add_argument("--first-byte-delay", type=float, default=0.0)
    parser.add_argument("--quiet", action="store_true", help="no access log")
    args = parser.parse_args(argv)
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(name)s %(message)s")

    async def serve() -> None:
        async with FakeProviderServer(args.host, args.port, access_log=not args.quiet) as fake:
            fake.record_requests = False  # nobody reads them here, and a long benchmark would grow the list
            fake.default = Script(text=args.text, tokens_per_second=args.tps, first_byte_delay=args.first_byte_delay)
            print(fake.base_url, flush=True)
            log.info("OpenAI: %s/v1  Anthropic: %s  Gemini: %s/v1beta", fake.base_url, fake.base_url, fake.base_url)
            await asyncio.Event().wait()

    try:
        asyncio.run(serve())
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
