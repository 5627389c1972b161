"""The one middleware in front of every route: client keys, the body size limit, and the
request metrics. Plain ASGI (no `BaseHTTPMiddleware`): it must not buffer streamed answers,
and it runs on every request, so it stays small.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .auth import KeyChecker, presented_key
from .errors import ApiError, render, too_large, unauthorized
from .metrics import Metrics

# Open without a key: the page's shell (it holds no data; its data calls need the key) and liveness.
PUBLIC = ("/", "/health", "/favicon.ico")
PUBLIC_PREFIXES = ("/static/",)


class BodyTooLarge(Exception):
    pass


class GatewayMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        keys: KeyChecker | None,
        max_body: int,
        metrics: Metrics,
        route_of: Callable[[Scope], str],
    ):
        self.app = app
        self.keys = keys
        self.max_body = max_body
        self.metrics = metrics
        self.route_of = route_of

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500
        sent_start = False

        async def send_wrapper(message: Message) -> None:
            nonlocal status, sent_start
            if message["type"] == "http.response.start":
                status, sent_start = message["status"], True
            await send(message)

        self.metrics.in_flight.inc()
        try:
            error = self._refuse(scope)
            if error is not None:
                await _send_error(error, scope, send_wrapper)
                return
            await self.app(scope, self._limited(receive), send_wrapper)
        except BodyTooLarge:
            if sent_start:
                raise
            await _send_error(too_large(self.max_body), scope, send_wrapper)
        finally:
            self.metrics.in_flight.dec()
            self.metrics.observe_request(scope["method"], self.route_of(scope), status, time.perf_counter() - started)

    def _refuse(self, scope: Scope) -> ApiError | None:
        """An error to answer at once: a missing or wrong key, or a declared size over the limit."""
        path = scope["path"]
        if self.keys is not None and scope["method"] != "OPTIONS" and not _public(path):
            key = presented_key(scope["headers"])
            client = self.keys.check(key)
            if client is None:
                return unauthorized(key is not None)
            scope.setdefault("state", {})["client"] = client
        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    return ApiError(400, "invalid_request", "Content-Length is not a number")
                if declared > self.max_body:
                    return too_large(self.max_body)
                break
        return None

    def _limited(self, receive: Receive) -> Receive:
        """`receive`, counting body bytes: a chunked body can lie about nothing, but can be endless."""
        limit = self.max_body
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise BodyTooLarge
            return message

        return counted


def _public(path: str) -> bool:
    return path in PUBLIC or path.startswith(PUBLIC_PREFIXES)


async def _send_error(error: ApiError, scope: Scope, send: Send) -> None:
    response = render(error, scope["path"])
    await response(scope, _drained, send)


async def _drained() -> Message:  # the error responses here never read the body
    return {"type": "http.disconnect"}
