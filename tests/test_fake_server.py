"""The fake provider itself: each wire format, streaming and not, errors, and the failure modes it can script."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.fakes._formats import go_duration, split_words
from tests.fakes.provider_server import FakeProviderServer, Script

ROOT = Path(__file__).resolve().parent.parent
TEXT = "Hello from the fake provider."
PIECES = ["Hello", " from", " the", " fake", " provider."]
OPENAI_H = {"Authorization": "Bearer sk-test"}
ANTHROPIC_H = {"x-api-key": "sk-ant-test", "anthropic-version": "2023-06-01"}
GEMINI_H = {"x-goog-api-key": "AIza-test"}
PROMPT = "say hello to me"  # 4 words: the fake's default input token count


@pytest.fixture
async def fake() -> AsyncIterator[FakeProviderServer]:
    async with FakeProviderServer() as server:
        yield server


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def chat(**extra: Any) -> dict[str, Any]:
    return {"model": "gpt-test", "messages": [{"role": "user", "content": PROMPT}], **extra}


def messages(**extra: Any) -> dict[str, Any]:
    return {"model": "claude-test", "max_tokens": 64, "messages": [{"role": "user", "content": PROMPT}], **extra}


def contents() -> dict[str, Any]:
    return {"contents": [{"role": "user", "parts": [{"text": PROMPT}]}]}


# One request per format: (path, headers, body) for a non-streaming and a streaming call.
def call(fake: FakeProviderServer, fmt: str, stream: bool) -> tuple[str, dict[str, str], dict[str, Any]]:
    base = fake.base_url
    if fmt == "openai":
        return f"{base}/v1/chat/completions", OPENAI_H, chat(stream=stream)
    if fmt == "anthropic":
        return f"{base}/v1/messages", ANTHROPIC_H, messages(stream=stream)
    action = "streamGenerateContent?alt=sse" if stream else "generateContent"
    return f"{base}/v1beta/models/gemini-test:{action}", GEMINI_H, contents()


def parse_sse(data: bytes) -> list[tuple[str | None, str]]:
    """(event, data) pairs, the way a client reading line by line sees them (LF or CRLF)."""
    events: list[tuple[str | None, str]] = []
    event: str | None = None
    lines: list[str] = []
    for line in data.decode().replace("\r\n", "\n").split("\n"):
        if not line:
            if lines:
                events.append((event, "\n".join(lines)))
            event, lines = None, []
        elif line.startswith("event:"):
            event = line[6:].strip()
        elif line.startswith("data:"):
            lines.append(line[5:].lstrip())
    return events


async def read_sse(resp: aiohttp.ClientResponse) -> list[tuple[str | None, str]]:
    return parse_sse(await resp.read())


def text_of(fmt: str, events: list[tuple[str | None, str]]) -> str:
    out = []
    for _, data in events:
        if data == "[DONE]":
            continue
        obj = json.loads(data)
        if fmt == "openai" and obj["choices"]:
            out.append(obj["choices"][0]["delta"].get("content") or "")
        elif fmt == "anthropic" and obj["type"] == "content_block_delta":
            out.append(obj["delta"]["text"])
        elif fmt == "gemini":
            out.append(obj["candidates"][0]["content"]["parts"][0]["text"])
    return "".join(out)


# --- OpenAI -------------------------------------------------------------------------------------------------------


async def test_openai_non_stream(fake: FakeProviderServer, http: aiohttp.ClientSession) -> None:
    async with http.post(f"{fake.base_url}/v1/chat/completions", json=chat(), headers=OPENAI_H) as resp:
        assert resp.status == 200
        assert resp.content_type == "application/json"
        body = await resp.json()
    assert body["object"] == "chat.completion" and body["id"] and isinstance(body["created"], int)
    assert body["model"] == "gpt-test"
    choice = body["choices"][0]
    assert choice["message"]["role"] == "assistant" and choice["message"]["content"] == TEXT
    assert choice["finish_reason"] == "stop"
    assert body["usage"] == {"prompt_tokens": 4, "completion_tokens": 5, "total_tokens": 9}
    [req] = fake.requests
    assert (req.format, req.path, req.stream) == ("openai", "/v1/chat/completions", False)
    assert req.headers["authorization"] == "Bearer sk-test" and req.json == chat()


async def test_openai_stream(fake: FakeProviderServer, http: aiohttp.ClientSession) -> None:
    async with http.post(f"{fake.base_url}/v1/chat/completions", json=chat(stream=True), headers=OPENAI_H) as resp:
        assert resp.status == 200 and resp.content_type == "text/event-stream"
        events = await read_sse(resp)
    assert events[-1] == (None, "[DONE]")
    chunks = [json.loads(d) for _, d in events[:-1]]
    assert all(c["object"] == "chat.completion.chunk" and c["model"] == "gpt-test" for c in chunks)
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert [c["choices"][0]["delta"]["content"] for c in chunks[1:-1]] == PIECES
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop" and chunks[-1]["choices"][0]["delta"] == {}
    assert all("usage" not in c for c in chunks)
    assert fake.requests[0].stream is True and fake.completed_streams == 1


async def test_openai_stream_include_usage(fake: FakeProviderServer, http: aiohttp.ClientSession) -> None:
    body = chat(stream=True, stream_options={"include_usage": True})
    async with http.post(f"{fake.base_url}/v1/chat/completions", json=body, headers=OPENAI_H) as resp:
        events = await read_sse(resp)
    assert events[-1][1] == "[DONE]"
    usage_chunk = json.loads(events[-2][1])
    assert usage_chunk["choices"] == []
    assert usage_chunk["usage"] == {"prompt_tokens": 4, "completion_tokens": 5, "total_tokens": 9}
    assert json.loads(events[-3][1])["choices"][0]["finish_reason"] == "stop"
    assert all(json.loads(d)["usage"] is None for _, d in events[:-2])


async def test_openai_fim(fake: FakeProviderServer, http: aiohttp.ClientSession) -> None:
    fake.script(Script(text="return a + b"), Script(text="return a + b"))
    fim = {"model": "coder", "prompt": "def add(a, b):\n    ", "suffix": "\n\nprint(add(1, 2))"}
    async with http.post(f"{fake.base_url}/v1/completions", json=fim, headers=OPENAI_H) as resp:
        body = await resp.json()
    assert body["object"] == "text_completion" and body["choices"][0]["text"] == "return a + b"
    assert body["usage"]["prompt_tokens"] == 5
    async with http.post(f"{fake.base_url}/v1/completions", json={**fim, "stream": True}, headers=OPENAI_H) as resp:
        events = await read_sse(resp)
    assert events[-1][1] == "[DONE]"
    chunks = [json.loads(d)["choices"][0] for _, d in events[:-1]]
    assert "".join(c["text"] for c in chunks) == "return a + b" and chunks[-1]["finish_reason"] == "stop"
    assert [r.format for r in fake.requests] == ["openai-fim", "openai-fim"]


async def test_model_listings(fake: FakeProviderServer, http: aiohttp.ClientSession) -> None:
    async with http.get(f"{fake.base_url}/v1/models", headers=OPENAI_H) as resp:
        assert (await resp.json())["data"][0] == {
            "id": "fake-model",
            "object": "model",
            "created": 0,
            "owned_by": "fake",
        }
    async with http.get(f"{fake.base_url}/v1/models", headers=ANTHROPIC_H) as resp:
        assert (await resp.json())["data"][0]["type"] == "model"
    async with http.get(f"{fake.base_url}/v1beta/models", headers=GEMINI_H) as resp:
        assert (await resp.json())["models"][0]["name"] == "models/fake-model"


# --- Anthropic ----------------------------------------------------------------------------------------------------


async def test_anthropic_non_stream(fake: FakeProviderServer, http: aiohttp.ClientSession) -> None:
    body = messages(system="be brief")  # system words count as input too
    async with http.post(f"{fake.base_url}/v1/messages", json=body, headers=ANTHROPIC_H) as resp:
        assert resp.status == 200
        answer = await resp.json()
    assert answer == {
        "id": answer["id"],
        "type": "message",
        "role": "assistant",
        "model": "claude-test",
        "content": [{"type": "text", "text": TEXT}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": 6, "output_tokens": 5},
    }
    assert fake.requests[0].headers["X-Api-Key"] == "sk-ant-test"


async def test_anthropic_stream(fake: FakeProviderServer, http: aiohttp.ClientSession) -> None:
    async with http.post(f"{fake.base_url}/v1/messages", json=messages(stream=True), headers=ANTHROPIC_H) as resp:
        assert resp.content_type == "text/event-stream"
        events = await read_sse(resp)
    names = [e for e, _ in events]
    assert names == [
        "message_start",
        "content_block_start",
        "ping",
        *["content_block_delta"] * 5,
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    datas = [json.loads(d) for _, d in events]
    assert all(d["type"] == name for name, d in zip(names, datas, strict=True))
    assert datas[0]["message"]["usage"] == {"input_tokens": 4, "output_tokens": 1}
    assert all(d["delta"]["type"] == "text_delta" for d in datas[3:8])
    assert text_of("anthropic", events) == TEXT
    assert datas[-2]["delta"]["stop_reason"] == "end_turn" and datas[-2]["usage"] == {"output_tokens": 5}


async def test_anthropic_request_validation_does_not_consume_scripts(
    fake: FakeProviderServer, http: aiohttp.ClientSession
) -> None:
    fake.script(Script(text="scripted"))
    url = f"{fake.base_url}/v1/messages"
    cases = [
        ({"anthropic-version": "2023-06-01"}, messages(), 401, "authentication_error"),
        ({"x-api-key": "k"}, messages(), 400, "invalid_request_error"),
        (ANTHROPIC_H, {"model": "m", "messages": []}, 400, "invalid_request_error"),
    ]
    for headers, body, status, etype in cases:
        async with http.post(url, json=body, headers=headers) as resp:
            assert resp.status == status
            assert (await resp.json())["error"]["type"] == etype
    async with http.post(url, json=messages(), headers=ANTHROPIC_H) as resp:
        assert (await resp.json())["content"][0]["text"] == "scripted"
    assert len(fake.requests) == 4


# --- Gemini -------------------------------------------------------------------------------------------------------


async def test_gemini_non_stream(fake: FakeProviderServer, http: aiohttp.ClientSession) -> None:
    url, headers, body = call(fake, "gemini", False)
    async with http.post(url, json=body, headers=headers) as resp:
        answer = await resp.json()
    assert answer == {
        "candidates": [{"content": {"role": "model", "parts": [{"text": TEXT}]}, "finishReason": "STOP", "index": 0}],
        "usageMetadata": {"promptTokenCount": 4, "candidatesTokenCount": 5, "totalTokenCount": 9},
        "modelVersion": "gemini-test",
    }
    assert fake.requests[0].format == "gemini" and fake.requests[0].stream is False


async def test_gemini_stream(fake: FakeProviderServer, http: aiohttp.ClientSession) -> None:
    url, headers, body = call(fake, "gemini", True)
    async with http.post(url, json=body, headers=headers) as resp:
        assert resp.content_type == "text/event-stream"
        raw = await resp.read()
    assert raw.count(b"\r\n\r\n") == 5 and b"[DONE]" not in raw
    events = parse_sse(raw)
    objs = [json.loads(d) for _, d in events]
    assert text_of("gemini", events) == TEXT
    assert all("finishReason" not in o["candidates"][0] and "usageMetadata" not in o for o in objs[:-1])
    assert objs[-1]["candidates"][0]["finishReason"] == "STOP"
    assert objs[-1]["usageMetadata"]["candidatesTokenCount"] == 5
    req = fake.requests[0]
    assert req.stream is True and req.query["alt"] == "sse" and req.path.endswith(":streamGenerateContent")


async def test_gemini_stream_without_sse_is_a_json_array(fake: FakeProviderServer, http: aiohttp.ClientSession) -> None:
    url = f"{fake.base_url}/v1beta/models/gemini-test:streamGenerateContent"
    async with http.post(url, json=contents(), headers=GEMINI_H) as resp:
        items = await resp.json()
    assert "".join(i["candidates"][0]["content"]["parts"][0]["text"] for i in items) == TEXT
    assert items[-1]["candidates"][0]["finishReason"] == "STOP"


# --- auth and garbage ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["openai", "anthropic", "gemini"])
async def test_missing_key_is_rejected(fake: FakeProviderServer, http: aiohttp.ClientSession, fmt: str) -> None:
    url, _, body = call(fake, fmt, False)
    headers = {"anthropic-version": "2023-06-01"} if fmt == "anthropic" else {}
    async with http.post(url, json=body, headers=headers) as resp:
        status, err = resp.status, await resp.json()
    if fmt == "openai":
        assert status == 401 and err["error"]["code"] == "invalid_api_key"
        assert err["error"]["type"] == "invalid_request_error" and err["error"]["message"]
    elif fmt == "anthropic":
        assert status == 401 and err["type"] == "error" and err["error"]["type"] == "authentication_error"
    else:
        assert status == 403 and err["error"]["status"] == "PERMISSION_DENIED" and err["error"]["code"] == 403


async def test_empty_bearer_is_rejected(fake: FakeProviderServer, http: aiohttp.ClientSession) -> None:
    async with http.post(
        f"{fake.base_url}/v1/chat/completions", json=chat(), headers={"Authorization": "Bearer "}
    ) as r:
        assert r.status == 401


@pytest.mark.parametrize("fmt", ["openai", "anthropic", "gemini"])
async def test_garbage_json_is_a_400_in_format(fake: FakeProviderServer, http: aiohttp.ClientSession, fmt: str) -> None:
    url, headers, _ = call(fake, fmt, False)
    async with http.post(url, data=b"{not json", headers={**headers, "Content-Type": "application/json"}) as resp:
        status, err = resp.status, await resp.json()
    assert status == 400
    assert err["error"]["type" if fmt != "gemini" else "status"] in ("invalid_request_error", "INVALID_ARGUMENT")
    async with http.post(f"{fake.base_url}/nope", json={}, headers=headers) as resp:
        assert resp.status == 404


# --- scripted errors ----------------------------------------------------------------------------------------------

ERRORS = {  # (fmt, kind) -> (status, the provider's error type / status string)
    ("openai", "rate_limit"): (429, "rate_limit_exceeded"),
    ("openai", "auth"): (401, "invalid_api_key"),
    ("openai", "context_length"): (400, "context_length_exceeded"),
    ("openai", "server_error"): (500, None),
    ("openai", "unavailable"): (503, None),
    ("openai", "overloaded"): (503, None),
    ("anthropic", "rate_limit"): (429, "rate_limit_error"),
    ("anthropic", "auth"): (401, "authentication_error"),
    ("anthropic", "context_length"): (400, "invalid_request_error"),
    ("anthropic", "server_error"): (500, "api_error"),
    ("anthropic", "unavailable"): (503, "api_error"),
    ("anthropic", "overloaded"): (529, "overloaded_error"),
    ("gemini", "rate_limit"): (429, "RESOURCE_EXHAUSTED"),
    ("gemini", "auth"): (400, "INVALID_ARGUMENT"),
    ("gemini", "context_length"): (400, "INVALID_ARGUMENT"),
    ("gemini", "server_error"): (500, "INTERNAL"),
    ("gemini", "unavailable"): (503, "UNAVAILABLE"),
    ("gemini", "overloaded"): (503, "UNAVAILABLE"),
}


@pytest.mark.parametrize(("fmt", "kind"), list(ERRORS))
@pytest.mark.parametrize("stream", [False, True])
async def test_scripted_errors(
    fake: FakeProviderServer, http: aiohttp.ClientSession, fmt: str, kind: str, stream: bool
) -> None:
    fake.script(Script(error=kind))
    url, headers, body = call(fake, fmt, stream)
    async with http.post(url, json=body, headers=headers) as resp:
        status, ctype, err = resp.status, resp.content_type, await resp.json()
    want_status, want_type = ERRORS[fmt, kind]
    assert (status, ctype) == (want_status, "application/json")  # errors come as JSON even for streams
    if fmt == "openai":
        assert set(err["error"]) >= {"message", "type", "code"} and err["error"]["code"] == want_type
    elif fmt == "anthropic":
        assert err["type"] == "error" and err["error"]["type"] == want_type and err["error"]["message"]
    else:
        assert err["error"]["status"] == want_type and err["error"]["code"] == want_status
    if kind == "context_length":
        message = err["error"]["message"]
        assert {
            "openai": "maximum context length",
            "anthropic": "prompt is too long: 250000 tokens > 200000",
            "gemini": "The input token count (1500000) exceeds the maximum",
        }[fmt] in message


async def test_status_without_kind_gets_a_generic_body(fake: FakeProviderServer, http: aiohttp.ClientSession) -> None:
    fake.script(Script(status=502), Script(status=418, body="teapot", headers={"x-extra": "1"}))
    async with http.post(f"{fake.base_url}/v1/chat/completions", json=chat(), headers=OPENAI_H) as resp:
        assert resp.status == 502 and (await resp.json())["error"]["type"] == "server_error"
    async with http.post(f"{fake.base_url}/v1/chat/completions", json=chat(), headers=OPENAI_H) as resp:
        assert (resp.status, await resp.text(), resp.headers["x-extra"]) == (418, "teapot", "1")


async def test_retry_after_header(fake: FakeProviderServer, http: aiohttp.ClientSession) -> None:
    fake.script(Script(error="rate_limit", retry_hint="retry-after", retry_after=3))
    async with http.post(f"{fake.base_url}/v1/chat/completions", json=chat(), headers=OPENAI_H) as resp:
        assert resp.status == 429 and resp.headers["Retry-After"] == "3"
        assert (await resp.json())["error"]["code"] == "rate_limit_exceeded"


async def test_openai_reset_headers(fake: FakeProviderServer, http: aiohttp.ClientSession) -> None:
    fake.script(Script(error="rate_limit", retry_hint="openai-reset", retry_after=360))
    async with http.post(f"{fake.base_url}/v1/chat/completions", json=chat(), headers=OPENAI_H) as resp:
        assert resp.headers["x-ratelimit-reset-requests"] == "6m0s"
        assert resp.headers["x-ratelimit-remaining-requests"] == "0" and "Retry-After" not in resp.headers
    assert [go_duration(s) for s in (1, 0.012, 2.5, 3723)] == ["1s", "12ms", "2.5s", "1h2m3s"]


async def test_anthropic_reset_headers(fake: FakeProviderServer, http: aiohttp.ClientSession) -> None:
    fake.script(Script(error="rate_limit", retry_hint="anthropic-reset", retry_after=30))
    async with http.post(f"{fake.base_url}/v1/messages", json=messages(), headers=ANTHROPIC_H) as resp:
        assert resp.status == 429 and resp.headers["retry-after"] == "30"
        reset = datetime.fromisoformat(resp.headers["anthropic-ratelimit-requests-reset"])
    assert 28 <= (reset - datetime.now(UTC)).total_seconds() <= 31


async def test_gemini_retry_info(fake: FakeProviderServer, http: aiohttp.ClientSession) -> None:
    fake.script(Script(error="rate_limit", retry_hint="gemini-retryinfo", retry_after=45.8))
    url, headers, body = call(fake, "gemini", False)
    async with http.post(url, json=body, headers=headers) as resp:
        err = (await resp.json())["error"]
    assert resp.status == 429 and err["status"] == "RESOURCE_EXHAUSTED"
    [retry] = [d for d in err["details"] if d["@type"] == "type.googleapis.com/google.rpc.RetryInfo"]
    assert retry["retryDelay"] == "45.8s"


# --- failure modes ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["openai", "anthropic", "gemini"])
async def test_cut_stream_is_an_incomplete_body(
    fake: FakeProviderServer, http: aiohttp.ClientSession, fmt: str
) -> None:
    fake.script(Script(cut_after=2))
    url, headers, body = call(fake, fmt, True)
    received = b""
    async with http.post(url, json=body, headers=headers) as resp:
        assert resp.status == 200
        with pytest.raises(aiohttp.ClientPayloadError):
            async for line in resp.content:  # what a line-reading SSE client sees: data, then an error
                received += line
    events = parse_sse(received)
    assert text_of(fmt, events) == "Hello from"
    assert b"[DONE]" not in received and b"message_stop" not in received and b"finishReason" not in received
    assert fake.completed_streams == 0 and fake.disconnects == 0


async def test_cut_after_all_chunks_still_lacks_the_terminator(
    fake: FakeProviderServer, http: aiohttp.ClientSession
) -> None:
    fake.script(Script(cut_after=99))
    url, headers, body = call(fake, "gemini", True)
    async with http.post(url, json=body, headers=headers) as resp:
        with pytest.raises(aiohttp.ClientPayloadError):
            await resp.read()


async def test_cut_non_stream_is_a_truncated_body(fake: FakeProviderServer, http: aiohttp.ClientSession) -> None:
    fake.script(Script(cut_after=0))
    async with http.post(f"{fake.base_url}/v1/chat/completions", json=chat(), headers=OPENAI_H) as resp:
        assert resp.status == 200
        with pytest.raises(aiohttp.ClientPayloadError):
            await resp.read()


async def test_malformed(fake: FakeProviderServer, http: aiohttp.ClientSession) -> None:
    fake.script(Script(malformed=True), Script(malformed=True))
    async with http.post(f"{fake.base_url}/v1/chat/completions", json=chat(), headers=OPENAI_H) as resp:
        assert resp.status == 200
        with pytest.raises(json.JSONDecodeError):
            json.loads(await resp.read())
    async with http.post(f"{fake.base_url}/v1/chat/completions", json=chat(stream=True), headers=OPENAI_H) as resp:
        events = await read_sse(resp)
    bad = []
    for _, data in events[:-1]:
        try:
            json.loads(data)
        except json.JSONDecodeError:
            bad.append(data)
    assert len(bad) == 1 and events[-1][1] == "[DONE]"


@pytest.mark.parametrize(
    ("fmt", "etype"), [("openai", "server_error"), ("anthropic", "overloaded_error"), ("gemini", "UNAVAILABLE")]
)
async def test_stream_error_event(fake: FakeProviderServer, http: aiohttp.ClientSession, fmt: str, etype: str) -> None:
    fake.script(Script(stream_error=etype))
    url, headers, body = call(fake, fmt, True)
    async with http.post(url, json=body, headers=headers) as resp:
        events = await read_sse(resp)
    name, data = events[-1]
    err = json.loads(data)
    if fmt == "anthropic":
        assert name == "error" and err == {
            "type": "error",
            "error": {"type": etype, "message": err["error"]["message"]},
        }
    elif fmt == "gemini":
        assert err["error"]["status"] == etype and err["error"]["code"] == 503
    else:
        assert err["error"]["type"] == etype
    assert text_of(fmt, events[:-1]) == "Hello"


@pytest.mark.parametrize("fmt", ["openai", "anthropic", "gemini"])
async def test_split_writes(fake: FakeProviderServer, http: aiohttp.ClientSession, fmt: str) -> None:
    fake.script(Script(split_writes=True))
    url, headers, body = call(fake, fmt, True)
    reads = []
    async with http.post(url, json=body, headers=headers) as resp:
        async for data in resp.content.iter_any():
            reads.append(data)
    assert any(not r.endswith(b"\n") for r in reads)  # some read really ended in the middle of a line
    assert text_of(fmt, parse_sse(b"".join(reads))) == TEXT


async def test_wait_disconnect(fake: FakeProviderServer, http: aiohttp.ClientSession) -> None:
    fake.script(Script(tokens_per_second=50))
    resp = await http.post(f"{fake.base_url}/v1/messages", json=messages(stream=True), headers=ANTHROPIC_H)
    await resp.content.readline()
    resp.close()
    await fake.wait_disconnect(timeout=2)
    assert fake.disconnects == 1 and fake.completed_streams == 0


async def test_client_timeout_during_first_byte_delay_is_a_disconnect(
    fake: FakeProviderServer, http: aiohttp.ClientSession
) -> None:
    fake.script(Script(first_byte_delay=5))
    with pytest.raises(TimeoutError):
        await http.post(
            f"{fake.base_url}/v1/chat/completions",
            json=chat(),
            headers=OPENAI_H,
            timeout=aiohttp.ClientTimeout(total=0.05),
        )
    await fake.wait_disconnect(timeout=2)
    assert fake.disconnects == 1


async def test_wait_disconnect_times_out(fake: FakeProviderServer) -> None:
    with pytest.raises(TimeoutError):
        await fake.wait_disconnect(timeout=0.01)


async def test_first_byte_delay_and_tps(fake: FakeProviderServer, http: aiohttp.ClientSession) -> None:
    fake.script(Script(first_byte_delay=0.2), Script(tokens_per_second=100))
    start = time.perf_counter()
    async with http.post(f"{fake.base_url}/v1/chat/completions", json=chat(), headers=OPENAI_H) as resp:
        assert resp.status == 200
    assert time.perf_counter() - start >= 0.2
    start = time.perf_counter()
    async with http.post(f"{fake.base_url}/v1/chat/completions", json=chat(stream=True), headers=OPENAI_H) as resp:
        await resp.read()
    assert time.perf_counter() - start >= 4 / 100  # 5 chunks, 4 pauses


async def test_queue_is_fifo_then_default(fake: FakeProviderServer, http: aiohttp.ClientSession) -> None:
    fake.script(Script(text="one"), Script(text="two"))
    fake.default = Script(text="default")
    seen = []
    for _ in range(4):
        async with http.post(f"{fake.base_url}/v1/chat/completions", json=chat(), headers=OPENAI_H) as resp:
            seen.append((await resp.json())["choices"][0]["message"]["content"])
    assert seen == ["one", "two", "default", "default"]
    fake.reset()
    assert fake.requests == [] and fake.default == Script()


async def test_overrides(fake: FakeProviderServer, http: aiohttp.ClientSession) -> None:
    fake.script(
        Script(chunks=["a", "b"], usage=(100, 7), finish_reason="length", headers={"x-request-id": "r1"}),
        Script(body={"custom": True}),
    )
    async with http.post(f"{fake.base_url}/v1/chat/completions", json=chat(stream=True), headers=OPENAI_H) as resp:
        assert resp.headers["x-request-id"] == "r1"
        events = await read_sse(resp)
    assert text_of("openai", events) == "ab"
    assert json.loads(events[-2][1])["choices"][0]["finish_reason"] == "length"
    async with http.post(f"{fake.base_url}/v1/chat/completions", json=chat(), headers=OPENAI_H) as resp:
        assert await resp.json() == {"custom": True}
    assert split_words(" a  b ") == [" a", "  b", " "] and "".join(split_words(TEXT)) == TEXT


async def test_usage_override_non_stream(fake: FakeProviderServer, http: aiohttp.ClientSession) -> None:
    fake.script(Script(usage=(100, 7)))
    url, headers, body = call(fake, "gemini", False)
    async with http.post(url, json=body, headers=headers) as resp:
        usage = (await resp.json())["usageMetadata"]
    assert usage == {"promptTokenCount": 100, "candidatesTokenCount": 7, "totalTokenCount": 107}


async def test_concurrent_requests(fake: FakeProviderServer, http: aiohttp.ClientSession) -> None:
    async def one() -> str:
        async with http.post(f"{fake.base_url}/v1/chat/completions", json=chat(), headers=OPENAI_H) as resp:
            return (await resp.json())["choices"][0]["message"]["content"]

    assert set(await asyncio.gather(*(one() for _ in range(64)))) == {TEXT}


def test_command_line() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.fakes.provider_server", "--port", "0", "--text", "hi there", "--quiet"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        base_url = proc.stdout.readline().strip()
        assert base_url.startswith("http://127.0.0.1:")

        async def ask() -> str:
            async with (
                aiohttp.ClientSession() as session,
                session.post(f"{base_url}/v1/messages", json=messages(), headers=ANTHROPIC_H) as resp,
            ):
                return (await resp.json())["content"][0]["text"]

        assert asyncio.run(ask()) == "hi there"
        proc.send_signal(signal.SIGINT)  # Ctrl-C: a clean exit
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for pipe in (proc.stdout, proc.stderr):
            if pipe is not None:
                pipe.close()
