"""The two kinds of answer the gateway sends: JSON, and a stream of server-sent events.

`EventStream` is our own small ASGI response rather than Starlette's `StreamingResponse`:
it always closes the event iterator (so the model's stream is closed with it), and it
stops at once when the client hangs up, even while waiting for the model's next token.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from contextlib import aclosing
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from pydantic_core import from_json, to_json
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from .errors import ApiError

M = TypeVar("M", bound=BaseModel)
SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


class JSON(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        # pydantic_core's encoder: several times the stdlib's, and it knows pydantic models.
        return to_json(content)


def usd(value: float) -> float:
    """Dollars for a JSON body: float sums carry noise past the tenth decimal (0.000010100000000000002)."""
    return round(value, 10)


def sse(data: Any) -> bytes:
    """One `data:` event."""
    return b"data: " + to_json(data) + b"\n\n"


async def read_json(request: Request, model: type[M]) -> M:
    raw = await request.body()
    if not raw.strip():
        raise ApiError(400, "invalid_request", "the request needs a JSON body")
    try:
        data = from_json(raw)
    except ValueError as exc:
        raise ApiError(400, "invalid_request", f"the body is not valid JSON: {exc}") from None
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = [
            {"field": ".".join(str(p) for p in e["loc"]) or "(body)", "problem": e["msg"]}
            for e in exc.errors(include_url=False, include_input=False)[:5]
        ]
        summary = "; ".join(f"{p['field']}: {p['problem']}" for p in problems)
        raise ApiError(400, "invalid_request", f"invalid request body: {summary}", extra={"fields": problems}) from None


def query_flag(request: Request, name: str) -> bool | None:
    raw = request.query_params.get(name)
    if raw is None:
        return None
    lowered = raw.strip().lower()
    if lowered in ("1", "true", "yes", "on", ""):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ApiError(400, "invalid_request", f"query parameter {name!r} must be true or false, not {raw!r}")


class EventStream:
    """`text/event-stream` from an async iterator of ready-made event bytes."""

    def __init__(self, events: AsyncIterator[bytes], headers: Mapping[str, str] | None = None):
        self._events = events
        self._headers = [(b"content-type", b"text/event-stream; charset=utf-8")] + [
            (k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in {**SSE_HEADERS, **(headers or {})}.items()
        ]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        pump = asyncio.ensure_future(self._pump(send))
        watch = asyncio.ensure_future(_wait_disconnect(receive))
        try:
            done, _ = await asyncio.wait((pump, watch), return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (pump, watch):
                task.cancel()
            # Wait for the cancelled one: it closes the model's stream on its way out.
            await asyncio.gather(pump, watch, return_exceptions=True)
        if pump in done and not pump.cancelled() and (error := pump.exception()) is not None:
            raise error

    async def _pump(self, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": self._headers})
        async with aclosing(self._events) as events:  # type: ignore[type-var]
            async for data in events:
                await send({"type": "http.response.body", "body": data, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})


async def _wait_disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass
