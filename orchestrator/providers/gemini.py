"""Google Gemini generateContent."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import aclosing
from typing import Any
from urllib.parse import quote

from ..errors import BadResponse
from ..types import Chunk, Request, Response
from . import failures
from .base import HTTPProvider
from .sse import SSEError, iter_events


class GeminiProvider(HTTPProvider):
    def _headers(self) -> dict[str, str]:
        # The key goes in a header, never in the URL: URLs end up in logs and error messages.
        return {"x-goog-api-key": self._key} if self._key else {}

    def _url(self, model: str, method: str) -> str:
        return f"{self.base_url}/v1beta/models/{quote(model, safe='')}:{method}"

    def _body(self, request: Request) -> dict[str, Any]:
        system = [m.content for m in request.messages if m.role == "system"]
        if request.system:
            system.insert(0, request.system)
        contents = [
            {"role": "model" if m.role == "assistant" else "user", "parts": [{"text": m.content}]}
            for m in request.messages
            if m.role != "system"
        ]
        config: dict[str, Any] = {"maxOutputTokens": request.max_tokens}
        if request.temperature is not None:
            config["temperature"] = request.temperature
        if request.stop:
            config["stopSequences"] = list(request.stop)
        if request.json_mode:
            config["responseMimeType"] = "application/json"
        body: dict[str, Any] = {"contents": contents, "generationConfig": config}
        if system:
            body["systemInstruction"] = {"parts": [{"text": "\n\n".join(system)}]}
        return body

    def _parse(self, payload: Any) -> tuple[str, str | None, dict[str, Any]]:
        if not isinstance(payload, dict):
            raise BadResponse(f"{self.name} answered with something that is not an object", provider=self.name)
        if "error" in payload:
            raise failures.from_stream_error(self.name, payload)
        text = ""
        finish = None
        candidates = payload.get("candidates") or []
        if candidates:
            first = candidates[0]
            parts = (first.get("content") or {}).get("parts") or []
            text = "".join(p.get("text", "") for p in parts if isinstance(p, dict) and not p.get("thought"))
            finish = first.get("finishReason")
        elif "promptFeedback" in payload and payload["promptFeedback"].get("blockReason"):
            finish = f"blocked:{payload['promptFeedback']['blockReason']}"
        return text, finish, payload.get("usageMetadata") or {}

    async def complete(self, request: Request) -> Response:
        data = await self._post_json(self._url(request.model, "generateContent"), self._body(request), self._headers())
        text, finish, usage = self._parse(data)
        if finish is None and not text:
            raise BadResponse(f"{self.name} answered without candidates", provider=self.name)
        return Response(
            model=request.model,
            provider=self.name,
            text=text,
            usage=self.usage(request, text, usage.get("promptTokenCount"), usage.get("candidatesTokenCount")),
            finish_reason=finish,
        )

    async def stream(self, request: Request) -> AsyncIterator[Chunk]:
        parts: list[str] = []
        finish: str | None = None
        usage: dict[str, Any] = {}
        url = self._url(request.model, "streamGenerateContent") + "?alt=sse"
        async with self._post(url, self._body(request), self._headers()) as resp:
            try:
                async with aclosing(iter_events(resp.content)) as events:
                    async for event in events:
                        text, event_finish, event_usage = self._parse(self._load(event.data))
                        if text:
                            parts.append(text)
                            yield Chunk(text=text)
                        usage = event_usage or usage
                        finish = event_finish or finish
            except SSEError as exc:
                raise BadResponse(f"{self.name}: {exc}", provider=self.name) from None
        # No [DONE] in Gemini's format: a stream that closes before a finishReason was cut.
        if finish is None:
            raise BadResponse(
                f"{self.name} stream ended without a finishReason after {len(parts)} chunks: the answer is incomplete",
                provider=self.name,
            )
        yield Chunk(
            usage=self.usage(request, "".join(parts), usage.get("promptTokenCount"), usage.get("candidatesTokenCount")),
            finish_reason=finish,
        )
