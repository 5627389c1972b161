"""The `/api/ai/` contract: chat (SSE events `start`, `token`, `done`), code analysis and
conversations, in the request and response shapes of the LionPack specification.
"""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import PurePosixPath
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel
from starlette.requests import Request
from starlette.responses import Response

from orchestrator.errors import InvalidInputError, OrchestratorError
from orchestrator.results import ChatStream
from orchestrator.routing import RouteRequest, Task
from orchestrator.settings import PROVIDER_ALIASES
from orchestrator.types import Chunk, Document, Finding, Message, Position, Profile, Range, Severity, Usage

from .errors import ApiError, from_core
from .openai_api import ascii_header, client_label, finish_reason, no_cache, usage_json
from .responses import JSON, EventStream, query_flag, read_json, sse, usd

ROUTE = "/api/ai/chat"
_EXTENSIONS = {
    "python": ".py",
    "javascript": ".js",
    "typescript": ".ts",
    "typescriptreact": ".tsx",
    "javascriptreact": ".jsx",
    "go": ".go",
    "rust": ".rs",
    "java": ".java",
    "kotlin": ".kt",
    "c": ".c",
    "cpp": ".cpp",
    "csharp": ".cs",
    "ruby": ".rb",
    "php": ".php",
    "swift": ".swift",
    "shell": ".sh",
    "sql": ".sql",
}
_LANGUAGES = {ext: lang for lang, ext in _EXTENSIONS.items()}
# Our severities in the contract's words.
SEVERITY = {Severity.ERROR: "high", Severity.WARNING: "medium", Severity.INFO: "low", Severity.HINT: "info"}


_CAMEL_OR_SNAKE = ConfigDict(alias_generator=to_camel, validate_by_name=True, validate_by_alias=True)


class ChatContext(BaseModel):
    model_config = ConfigDict(extra="allow", **_CAMEL_OR_SNAKE)

    file_path: str | None = None
    file_content: str | None = None
    selected_text: str | None = None
    project_context: str | None = None


class ChatOptions(BaseModel):
    model_config = ConfigDict(extra="allow", **_CAMEL_OR_SNAKE)

    provider: str | None = "auto"
    model: str | None = None
    profile: Profile | None = None
    max_tokens: int | None = Field(default=None, gt=0)
    stream: bool | None = None


class ChatRequest(BaseModel):
    # JavaScript clients send camelCase (conversationId): accept both spellings.
    model_config = _CAMEL_OR_SNAKE

    message: str = Field(min_length=1)
    conversation_id: str | None = None
    context: ChatContext | None = None
    options: ChatOptions = Field(default_factory=ChatOptions)


class AnalysisOptions(BaseModel):
    model_config = ConfigDict(extra="allow", **_CAMEL_OR_SNAKE)

    profile: Profile | None = None
    consensus: bool = False
    ai: bool = True


class AnalysisRequest(BaseModel):
    model_config = _CAMEL_OR_SNAKE

    code: str
    language: str = "python"
    analysis_type: str | list[str] | None = None
    analysis_types: list[str] | None = None
    file_path: str | None = None
    options: AnalysisOptions = Field(default_factory=AnalysisOptions)


# -- chat ---------------------------------------------------------------------------------


async def chat(request: Request) -> Response:
    orch = request.app.state.orch
    body = await read_json(request, ChatRequest)
    streaming = query_flag(request, "stream")
    if streaming is None:
        streaming = body.options.stream if body.options.stream is not None else True
    conversation = body.conversation_id
    created = not conversation
    if conversation:
        try:
            await orch.conversations.get(conversation)
        except InvalidInputError:
            raise ApiError(404, "not_found", f"no conversation {conversation!r}") from None
    else:
        conversation = await orch.conversations.create(body.message, front_end="http")
    try:
        return await _answer(request, body, conversation, streaming)
    except (OrchestratorError, ApiError):
        if created:  # nothing was said in it: do not leave an empty conversation behind
            await orch.conversations.delete(conversation)
        raise


async def _answer(request: Request, body: ChatRequest, conversation: str, streaming: bool) -> Response:
    state = request.app.state
    orch = state.orch
    opts = body.options
    document, selection, message = _context(body)
    started = time.perf_counter()
    stream = await orch.chat(
        [Message(role="user", content=message)],
        document=document,
        selection=selection,
        profile=opts.profile,
        model=_pin(orch, opts),
        max_tokens=opts.max_tokens or 2048,
        use_cache=not no_cache(request),
        conversation_id=conversation,
        front_end=client_label(request),
    )
    message_id = f"msg-{uuid.uuid4().hex[:12]}"
    headers = {"x-orchestrator-reason": ascii_header(stream.state.reason)}
    if not streaming:
        text = await stream.text()
        st = stream.state
        state.metrics.model_duration.labels(st.model or "unknown").observe(time.perf_counter() - started)
        usage = st.usage or Usage()
        return JSON(
            {
                "message_id": message_id,
                "conversation_id": conversation,
                "content": text,
                "provider": st.provider,
                "model": st.model,
                "usage": usage_json(usage),
                "cost": usd(usage.cost_usd),
                "cached": st.cached,
                "reason": st.reason,
            },
            headers={**headers, "x-orchestrator-model": st.model or ""},
        )
    chunks = aiter(stream)
    first = await anext(chunks, None)  # before the headers: a failure here still gets its status
    state.metrics.ttft.labels(ROUTE).observe(time.perf_counter() - started)
    headers["x-orchestrator-model"] = stream.state.model or ""
    events = _events(request, stream, chunks, first, message_id, conversation, started)
    return EventStream(events, headers=headers)


async def _events(
    request: Request,
    stream: ChatStream,
    chunks: AsyncIterator[Chunk],
    first: Chunk | None,
    message_id: str,
    conversation: str,
    started: float,
) -> AsyncIterator[bytes]:
    st = stream.state
    start = {"type": "start", "message_id": message_id, "conversation_id": conversation}
    yield sse({**start, "provider": st.provider, "model": st.model, "reason": st.reason})
    try:
        current = first
        while current is not None:
            if current.text:
                yield sse({"type": "token", "content": current.text})
            current = await anext(chunks, None)
    except OrchestratorError as exc:
        err = await from_core(exc, request.app.state.orch)
        yield sse({"type": "error", "error": err.code, "message": err.message, "partial": True})
        return
    finally:
        await stream.aclose()
    request.app.state.metrics.model_duration.labels(st.model or "unknown").observe(time.perf_counter() - started)
    usage = st.usage or Usage()
    yield sse(
        {
            "type": "done",
            "message_id": message_id,
            "total_tokens": usage.total_tokens,
            "finish_reason": finish_reason(st.finish_reason),
            "usage": usage_json(usage),
            "cost": usd(usage.cost_usd),
            "cached": st.cached,
        }
    )


def _context(body: ChatRequest) -> tuple[Document | None, Range | None, str]:
    ctx = body.context
    message = body.message
    if ctx is None:
        return None, None, message
    if ctx.project_context:
        message = f"{message}\n\nProject: {ctx.project_context}"
    if ctx.file_content is None:
        if ctx.selected_text:
            message = f"{message}\n\nSelected code:\n```\n{ctx.selected_text}\n```"
        return None, None, message
    path = ctx.file_path or "untitled"
    language = _LANGUAGES.get(PurePosixPath(path).suffix, "plaintext")
    doc = Document(path=path, text=ctx.file_content, language=language)
    return doc, _selection(ctx.file_content, ctx.selected_text), message


def _selection(text: str, selected: str | None) -> Range | None:
    if not selected:
        return None
    at = text.find(selected)
    if at < 0:
        return None
    before = text[:at]
    end = before + selected
    start_line, end_line = before.count("\n"), end.count("\n")
    start_char = at - (before.rfind("\n") + 1)
    end_char = len(end) - (end.rfind("\n") + 1)
    return Range(start=Position(line=start_line, character=start_char), end=Position(line=end_line, character=end_char))


def _pin(orch: Any, opts: ChatOptions) -> str | None:
    """options.model (with options.provider as its prefix when bare), or the provider's best model."""
    provider = (opts.provider or "auto").strip().lower()
    provider = PROVIDER_ALIASES.get(provider, provider)
    if opts.model:
        if provider not in ("", "auto") and "/" not in opts.model:
            return f"{provider}/{opts.model}"
        return opts.model
    if provider in ("", "auto"):
        return None
    decision = orch.router.route(RouteRequest(task=Task.CHAT, profile=opts.profile or orch.settings.routing.profile))
    for candidate in decision.candidates:
        if candidate.provider == provider:
            return candidate.id
    raise ApiError(
        400, "invalid_request", f"provider {provider!r} has no usable model now: {decision.reason}", extra={}
    )


# -- code analysis ------------------------------------------------------------------------


async def code_analysis(request: Request) -> Response:
    orch = request.app.state.orch
    body = await read_json(request, AnalysisRequest)
    kinds = body.analysis_types or body.analysis_type or list(orch.settings.analysis.kinds)
    if isinstance(kinds, str):
        kinds = [k.strip() for k in kinds.split(",") if k.strip()]
    language = body.language.strip().lower() or "plaintext"
    path = body.file_path or f"snippet{_EXTENSIONS.get(language, '.txt')}"
    doc = Document(path=path, text=body.code, language=language)
    started = time.perf_counter()
    result = await orch.analyze(
        doc,
        kinds=kinds,
        profile=body.options.profile,
        ai=body.options.ai,
        consensus=body.options.consensus,
        use_cache=not no_cache(request),
        front_end=client_label(request),
    )
    for model in result.models:
        request.app.state.metrics.model_duration.labels(model).observe(time.perf_counter() - started)
    findings = [_finding(f) for f in result.findings]
    return JSON(
        {
            "analysis_id": f"ana-{uuid.uuid4().hex[:12]}",
            "code_hash": "sha256-" + hashlib.sha256(body.code.encode("utf-8")).hexdigest(),
            "analysis_type": kinds[0] if len(kinds) == 1 else kinds,
            "analysis_types": kinds,
            "findings": findings,
            "summary": summary(findings),
            "analysis_cost": usd(result.usage.cost_usd),
            "usage": usage_json(result.usage),
            "models": result.models,
            "reason": result.reason,
            "notes": result.notes,
        },
        headers={"x-orchestrator-reason": ascii_header(result.reason)} if result.reason else None,
    )


def _finding(f: Finding) -> dict[str, Any]:
    return {
        "severity": SEVERITY[f.severity],
        "line": f.range.start.line + 1,
        "column": f.range.start.character + 1,
        "end_line": f.range.end.line + 1,
        "type": f.rule,
        "kind": f.kind.value,
        "message": f.message,
        "suggestion": f.suggestion,
        "source": f.source,
        "agreement": f.agreement,
        "fixable": f.fix is not None,
    }


def summary(findings: list[dict[str, Any]]) -> str:
    if not findings:
        return "No issues found"
    counts: dict[str, int] = {}
    for f in findings:
        counts[f["severity"]] = counts.get(f["severity"], 0) + 1
    parts = [f"{counts[s]} {s}" for s in ("high", "medium", "low", "info") if s in counts]
    noun = "issue" if len(findings) == 1 else "issues"
    return f"Found {len(findings)} {noun}: " + ", ".join(parts) + " severity"


# -- conversations ------------------------------------------------------------------------


async def get_conversation(request: Request) -> Response:
    orch = request.app.state.orch
    conversation_id = request.path_params["conversation_id"]
    try:
        conv = await orch.conversations.get(conversation_id)
    except InvalidInputError:
        raise ApiError(404, "not_found", f"no conversation {conversation_id!r}") from None
    messages = []
    for seq, m in enumerate(conv.messages, start=1):
        item: dict[str, Any] = {
            "id": f"msg-{seq}",
            "role": m.role,
            "content": m.content,
            "timestamp": iso(m.created_at),
        }
        if m.role == "assistant" and m.model:
            item["provider"], item["model"] = m.model.split("/", 1)[0], m.model
        messages.append(item)
    return JSON(
        {
            "conversation_id": conv.id,
            "title": conv.title,
            "front_end": conv.front_end,
            "created_at": iso(conv.created_at),
            "updated_at": iso(conv.updated_at),
            "messages": messages,
        }
    )


async def list_conversations(request: Request) -> Response:
    orch = request.app.state.orch
    try:
        limit = int(request.query_params.get("limit", "50"))
    except ValueError:
        raise ApiError(400, "invalid_request", "limit must be a number") from None
    items = await orch.conversations.list(limit=min(max(limit, 1), 500))
    return JSON(
        {
            "conversations": [
                {
                    "conversation_id": c.id,
                    "title": c.title,
                    "front_end": c.front_end,
                    "created_at": iso(c.created_at),
                    "updated_at": iso(c.updated_at),
                    "message_count": c.message_count,
                }
                for c in items
            ]
        }
    )


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
