"""OpenAI chat completions: OpenAI itself and every server that speaks its format
(OpenRouter, Ollama, LM Studio, vLLM, llama.cpp, GitHub Models, Azure AI Inference)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import aclosing
from typing import Any

from ..errors import BadResponse
from ..types import Chunk, Request, Response
from . import failures
from .base import HTTPProvider
from .sse import SSEError, iter_events


class OpenAIProvider(HTTPProvider):
    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._key}"} if self._key else {}

    def _body(self, request: Request, *, stream: bool) -> dict[str, Any]:
        messages = [{"role": "system", "content": request.system}] if request.system else []
        messages.extend({"role": m.role, "content": m.content} for m in request.messages)
        body: dict[str, Any] = {"model": request.model, "messages": messages}
        # OpenAI's own reasoning models refuse `max_tokens`; compatible servers only know it.
        limit_key = "max_completion_tokens" if "api.openai.com" in self.base_url else "max_tokens"
        body[limit_key] = request.max_tokens
        if request.temperature is not None:
            body["temperature"] = request.temperature
        if request.stop:
            body["stop"] = list(request.stop)
        if request.json_mode:
            body["response_format"] = {"type": "json_object"}
        if stream:
            body["stream"] = True
            body["stream_options"] = {"include_usage": True}
        return body

    async def complete(self, request: Request) -> Response:
        data = await self._post_json(
            f"{self.base_url}/chat/completions", self._body(request, stream=False), self._headers()
        )
        try:
            choice = data["choices"][0]
            text = choice["message"].get("content") or ""
            finish = choice.get("finish_reason")
        except (KeyError, IndexError, TypeError, AttributeError):
            if isinstance(data, dict) and "error" in data:
                raise failures.from_stream_error(self.name, data) from None
            raise BadResponse(f"{self.name} answered without choices[0].message", provider=self.name) from None
        usage = data.get("usage") or {}
        return Response(
            model=request.model,
            provider=self.name,
            text=text,
            usage=self.usage(request, text, usage.get("prompt_tokens"), usage.get("completion_tokens")),
            finish_reason=finish,
        )

    async def stream(self, request: Request) -> AsyncIterator[Chunk]:
        url = f"{self.base_url}/chat/completions"
        parts: list[str] = []
        finish: str | None = None
        usage: dict[str, Any] | None = None
        done = False
        async with self._post(url, self._body(request, stream=True), self._headers()) as resp:
            try:
                async with aclosing(iter_events(resp.content)) as events:
                    async for event in events:
                        if event.data == "[DONE]":
                            done = True
                            break
                        payload = self._load(event.data)
                        if not isinstance(payload, dict):
                            raise BadResponse(
                                f"{self.name} sent a stream event that is not an object", provider=self.name
                            )
                        if "error" in payload:
                            raise failures.from_stream_error(self.name, payload)
                        if payload.get("usage"):
                            usage = payload["usage"]
                        for choice in payload.get("choices") or ():
                            delta = choice.get("delta") or {}
                            text = delta.get("content")
                            if text:
                                parts.append(text)
                                yield Chunk(text=text)
                            if choice.get("finish_reason"):
                                finish = choice["finish_reason"]
            except SSEError as exc:
                raise BadResponse(f"{self.name}: {exc}", provider=self.name) from None
        if not done and finish is None:
            raise BadResponse(
                f"{self.name} stream ended before [DONE] after {len(parts)} chunks: the answer is incomplete",
                provider=self.name,
            )
        usage = usage or {}
        yield Chunk(
            usage=self.usage(request, "".join(parts), usage.get("prompt_tokens"), usage.get("completion_tokens")),
            finish_reason=finish or "stop",
        )
