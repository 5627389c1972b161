"""Anthropic Messages API."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import aclosing
from typing import Any

from ..errors import BadResponse
from ..types import Chunk, Request, Response
from . import failures
from .base import HTTPProvider
from .sse import SSEError, iter_events

API_VERSION = "2023-06-01"


class AnthropicProvider(HTTPProvider):
    def _headers(self) -> dict[str, str]:
        headers = {"anthropic-version": API_VERSION}
        if self._key:
            headers["x-api-key"] = self._key
        return headers

    def _body(self, request: Request, *, stream: bool) -> dict[str, Any]:
        # The Messages API takes the system prompt apart, and only user/assistant turns.
        system = [m.content for m in request.messages if m.role == "system"]
        if request.system:
            system.insert(0, request.system)
        body: dict[str, Any] = {
            "model": request.model,
            "max_tokens": request.max_tokens,
            "messages": [{"role": m.role, "content": m.content} for m in request.messages if m.role != "system"],
        }
        if system:
            body["system"] = "\n\n".join(system)
        if request.temperature is not None:
            body["temperature"] = request.temperature
        if request.stop:
            body["stop_sequences"] = list(request.stop)
        if stream:
            body["stream"] = True
        return body

    async def complete(self, request: Request) -> Response:
        data = await self._post_json(f"{self.base_url}/v1/messages", self._body(request, stream=False), self._headers())
        if not isinstance(data, dict) or not isinstance(data.get("content"), list):
            if isinstance(data, dict) and data.get("type") == "error":
                raise failures.from_stream_error(self.name, data)
            raise BadResponse(f"{self.name} answered without a content list", provider=self.name)
        text = "".join(block.get("text", "") for block in data["content"] if block.get("type") == "text")
        usage = data.get("usage") or {}
        return Response(
            model=request.model,
            provider=self.name,
            text=text,
            usage=self.usage(request, text, usage.get("input_tokens"), usage.get("output_tokens")),
            finish_reason=data.get("stop_reason"),
        )

    async def stream(self, request: Request) -> AsyncIterator[Chunk]:
        parts: list[str] = []
        input_tokens: int | None = None
        output_tokens: int | None = None
        stop_reason: str | None = None
        stopped = False
        async with self._post(
            f"{self.base_url}/v1/messages", self._body(request, stream=True), self._headers()
        ) as resp:
            try:
                async with aclosing(iter_events(resp.content)) as events:
                    async for event in events:
                        kind = event.event
                        if kind == "ping":
                            continue
                        payload = self._load(event.data)
                        kind = payload.get("type", kind) if isinstance(payload, dict) else kind
                        if kind == "error":
                            raise failures.from_stream_error(self.name, payload)
                        if kind == "message_start":
                            usage = (payload.get("message") or {}).get("usage") or {}
                            input_tokens = usage.get("input_tokens", input_tokens)
                            output_tokens = usage.get("output_tokens", output_tokens)
                        elif kind == "content_block_delta":
                            delta = payload.get("delta") or {}
                            if delta.get("type") == "text_delta" and delta.get("text"):
                                parts.append(delta["text"])
                                yield Chunk(text=delta["text"])
                        elif kind == "message_delta":
                            stop_reason = (payload.get("delta") or {}).get("stop_reason") or stop_reason
                            # Cumulative count: the last one is the total.
                            output_tokens = (payload.get("usage") or {}).get("output_tokens", output_tokens)
                        elif kind == "message_stop":
                            stopped = True
                            break
            except SSEError as exc:
                raise BadResponse(f"{self.name}: {exc}", provider=self.name) from None
        if not stopped:
            raise BadResponse(
                f"{self.name} stream ended before message_stop after {len(parts)} chunks: the answer is incomplete",
                provider=self.name,
            )
        yield Chunk(
            usage=self.usage(request, "".join(parts), input_tokens, output_tokens),
            finish_reason=stop_reason or "end_turn",
        )
