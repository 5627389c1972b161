"""The OpenAI-compatible API: `POST /v1/chat/completions`, `GET /v1/models`,
`GET /v1/models/rankings`. Point any OpenAI SDK at `http://HOST:PORT/v1`.

`model` is a catalog id (`anthropic/claude-sonnet-5-5`, or a bare wire id when only one
provider has it), `auto` (routed with the configured profile) or `auto:<profile>`. The
routing reason comes back in `x-orchestrator-reason`, the model that answered in
`x-orchestrator-model`, and whether the cache answered in `x-orchestrator-cache`.
"""

from __future__ import annotations

import calendar
import time
import uuid
from collections.abc import AsyncIterator
from datetime import date
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import Request
from starlette.responses import Response

from orchestrator.errors import OrchestratorError
from orchestrator.results import ChatStream
from orchestrator.routing import RouteRequest, Task
from orchestrator.types import AnalysisKind, Chunk, Message, Profile, Usage

from .errors import ApiError, from_core
from .responses import JSON, EventStream, read_json, sse, usd

DEFAULT_MAX_TOKENS = 2048
AUTO = "auto"
ROUTE = "/v1/chat/completions"


class _Part(BaseModel):
    type: str
    text: str | None = None


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")

    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | list[_Part] | None = None


class StreamOptions(BaseModel):
    include_usage: bool = False


class ChatCompletionRequest(BaseModel):
    model_config = ConfigDict(extra="allow")  # parameters we do not use are accepted, as OpenAI's servers do

    model: str = AUTO
    messages: list[ChatMessage] = Field(min_length=1)
    stream: bool = False
    stream_options: StreamOptions | None = None
    max_tokens: int | None = Field(default=None, gt=0)
    max_completion_tokens: int | None = Field(default=None, gt=0)
    n: int = Field(default=1, ge=1)
    tools: list[Any] | None = None
    temperature: float | None = Field(default=None, ge=0, le=2)
    stop: str | list[str] | None = None


def parse_model(model: str) -> tuple[Profile | None, str | None]:
    """(profile, pinned model) from the request's `model`."""
    name = model.strip()
    if name == AUTO or name == "":
        return None, None
    if name.startswith(AUTO + ":"):
        wanted = name[len(AUTO) + 1 :]
        try:
            return Profile(wanted), None
        except ValueError:
            valid = ", ".join(f"auto:{p.value}" for p in Profile)
            raise ApiError(
                400, "invalid_request", f"unknown profile in model {model!r}; use auto or one of: {valid}"
            ) from None
    return None, name


def to_messages(items: list[ChatMessage]) -> list[Message]:
    out = []
    for item in items:
        if item.role in ("tool", "function"):
            raise ApiError(400, "invalid_request", "tool and function messages are not supported by this gateway")
        if isinstance(item.content, list):
            if any(part.type != "text" for part in item.content):
                raise ApiError(400, "invalid_request", "only text content parts are supported by this gateway")
            text = "".join(part.text or "" for part in item.content)
        else:
            text = item.content or ""
        out.append(Message(role="system" if item.role == "developer" else item.role, content=text))
    if out[-1].role != "user":
        raise ApiError(400, "invalid_request", "the last message must be the user's")
    return out


def route_headers(stream: ChatStream) -> dict[str, str]:
    state = stream.state
    return {
        "x-orchestrator-model": state.model or "",
        "x-orchestrator-reason": ascii_header(state.reason),
        "x-orchestrator-cache": "hit" if state.cached else "miss",
    }


def ascii_header(text: str) -> str:
    """HTTP header values are Latin-1 at best: keep the reason readable in ASCII."""
    return text.replace("→", "->").encode("ascii", "replace").decode("ascii")


def no_cache(request: Request) -> bool:
    value = request.headers.get("cache-control", "").lower()
    return "no-cache" in value or "no-store" in value


def client_label(request: Request) -> str:
    client = request.scope.get("state", {}).get("client")
    return f"http:{client}" if client else "http"


def usage_json(usage: Usage | None) -> dict[str, int]:
    u = usage or Usage()
    return {"prompt_tokens": u.input_tokens, "completion_tokens": u.output_tokens, "total_tokens": u.total_tokens}


async def chat_completions(request: Request) -> Response:
    state = request.app.state
    body = await read_json(request, ChatCompletionRequest)
    if body.n != 1:
        raise ApiError(400, "invalid_request", "n > 1 is not supported by this gateway", extra={"param": "n"})
    if body.tools:
        raise ApiError(400, "invalid_request", "tools are not supported by this gateway", extra={"param": "tools"})
    profile, pin = parse_model(body.model)
    messages = to_messages(body.messages)
    started = time.perf_counter()
    stream = await state.orch.chat(
        messages,
        profile=profile,
        model=pin,
        max_tokens=body.max_completion_tokens or body.max_tokens or DEFAULT_MAX_TOKENS,
        use_cache=not no_cache(request),
        # An API client brings its own system messages: no editor prompt of ours.
        system="",
        temperature=body.temperature,
        stop=[body.stop] if isinstance(body.stop, str) else (body.stop or []),
        front_end=client_label(request),
    )
    if not body.stream:
        text = await stream.text()
        st = stream.state
        state.metrics.model_duration.labels(st.model or "unknown").observe(time.perf_counter() - started)
        usage = st.usage or Usage()
        payload = {
            "id": f"chatcmpl-{uuid.uuid4().hex[:24]}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": st.model or body.model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": text},
                    "finish_reason": finish_reason(st.finish_reason),
                }
            ],
            "usage": usage_json(usage),
            "orchestrator": {"reason": st.reason, "cost_usd": usd(usage.cost_usd), "cached": st.cached},
        }
        return JSON(payload, headers=route_headers(stream))
    chunks = aiter(stream)
    first = await anext(chunks, None)  # before the headers: a failure here still gets its status
    state.metrics.ttft.labels(ROUTE).observe(time.perf_counter() - started)
    include_usage = body.stream_options is not None and body.stream_options.include_usage
    events = _openai_events(request, stream, chunks, first, include_usage, started, body.model)
    return EventStream(events, headers=route_headers(stream))


async def _openai_events(
    request: Request,
    stream: ChatStream,
    chunks: AsyncIterator[Chunk],
    first: Chunk | None,
    include_usage: bool,
    started: float,
    asked: str,
) -> AsyncIterator[bytes]:
    st = stream.state
    head = {
        "id": f"chatcmpl-{uuid.uuid4().hex[:24]}",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": st.model or asked,
    }

    def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
        return sse({**head, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})

    try:
        yield chunk({"role": "assistant", "content": ""})
        current = first
        while current is not None:
            if current.text:
                yield chunk({"content": current.text})
            current = await anext(chunks, None)
    except OrchestratorError as exc:
        # Cut after text was sent: an error event and no [DONE], so no client takes it for a whole answer.
        err = await from_core(exc, request.app.state.orch)
        yield sse({"error": {"message": err.message, "type": "server_error", "code": err.code}})
        return
    finally:
        await stream.aclose()
    request.app.state.metrics.model_duration.labels(st.model or "unknown").observe(time.perf_counter() - started)
    yield chunk({}, finish_reason(st.finish_reason))
    if include_usage:
        yield sse({**head, "choices": [], "usage": usage_json(st.usage)})
    yield b"data: [DONE]\n\n"


def finish_reason(reason: str | None) -> str:
    # Providers' own words (end_turn, STOP, max_tokens...) in OpenAI's.
    if reason in ("length", "max_tokens", "MAX_TOKENS"):
        return "length"
    return "stop"


# -- models ------------------------------------------------------------------------------


async def list_models(request: Request) -> Response:
    orch = request.app.state.orch
    data: list[dict[str, Any]] = [
        {"id": AUTO, "object": "model", "created": 0, "owned_by": "orchestrator", "available": True}
    ]
    data += [
        {"id": f"{AUTO}:{p.value}", "object": "model", "created": 0, "owned_by": "orchestrator", "available": True}
        for p in Profile
    ]
    for info, available in orch.models():
        data.append(
            {
                "id": info.id,
                "object": "model",
                "created": _epoch(info.prices_as_of),
                "owned_by": info.provider,
                "available": available,
                "context_window": info.context_window,
                "max_output": info.max_output,
                "pricing": {"input_per_mtok": info.input_per_mtok, "output_per_mtok": info.output_per_mtok},
                "capabilities": [c.value for c in info.capabilities],
                "quality": info.quality,
                "latency_ms": info.latency_ms,
            }
        )
    return JSON({"object": "list", "data": data})


async def model_rankings(request: Request) -> Response:
    """Candidates in routing order for each profile and analysis kind (and chat), with scores."""
    orch = request.app.state.orch
    profiles = _pick(request, "profile", [p.value for p in Profile])
    kinds = _pick(request, "kind", [k.value for k in AnalysisKind] + [Task.CHAT.value])
    rankings = []
    for profile in profiles:
        for kind in kinds:
            is_kind = kind != Task.CHAT.value
            req = RouteRequest(
                task=Task.ANALYSIS if is_kind else Task(kind),
                profile=Profile(profile),
                kind=AnalysisKind(kind) if is_kind else None,
                prompt_tokens=2000,  # a typical request: a function or two with context
                max_output=1024,
                code_lines=80,
            )
            entry: dict[str, Any] = {"profile": profile, "kind": kind}
            try:
                decision = orch.router.route(req)
            except OrchestratorError as exc:
                rankings.append({**entry, "models": [], "reason": str(exc)})
                continue
            entry["models"] = [
                {
                    "rank": rank,
                    "id": c.id,
                    "provider": c.provider,
                    "score": round(c.score, 4),
                    "available": orch.resilience.available(c.provider),
                }
                for rank, c in enumerate(decision.candidates, start=1)
            ]
            entry["reason"] = decision.reason
            rankings.append(entry)
    return JSON({"object": "list", "data": rankings})


def _pick(request: Request, name: str, allowed: list[str]) -> list[str]:
    wanted = request.query_params.get(name)
    if wanted is None:
        return allowed
    if wanted not in allowed:
        raise ApiError(400, "invalid_request", f"unknown {name} {wanted!r}; valid: {', '.join(allowed)}")
    return [wanted]


def _epoch(day: str) -> int:
    try:
        return calendar.timegm(date.fromisoformat(day).timetuple())
    except ValueError:
        return 0
