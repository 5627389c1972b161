"""Body and SSE builders for the fake provider: one place per wire format (see /work/shared/WIRE.md).

Everything here is pure (no I/O) so the server's handler stays a thin loop over bytes.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
_WORDISH = re.compile(r"\s*\S+|\s+$")

# Status each scripted error kind gets when the Script does not force one.
ERROR_STATUS = {"rate_limit": 429, "auth": 401, "context_length": 400, "server_error": 500, "unavailable": 503}
GOOGLE_STATUS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}
GOOGLE_CODE = {v: k for k, v in GOOGLE_STATUS.items()}
MALFORMED = {
    "openai": b'data: {"id":"chatcmpl-broken","choices":[{"delta":\n\n',
    "openai-fim": b'data: {"id":"cmpl-broken","choices":[{"text":\n\n',
    "anthropic": b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,"delta":{\n\n',
    "gemini": b'data: {"candidates":[{"content":\r\n\r\n',
}


def split_words(text: str) -> list[str]:
    """'Hello from  x' -> ['Hello', ' from', '  x']: joining the pieces gives the text back."""
    return _WORDISH.findall(text)


def _text_of(content: Any) -> str:
    # Message content is a string or a list of parts ({"type": "text", "text": ...} / {"text": ...}).
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(p.get("text", "") for p in content if isinstance(p, dict) and isinstance(p.get("text"), str))
    if isinstance(content, dict):
        return _text_of(content.get("parts") or content.get("text") or "")
    return ""


def prompt_words(fmt: str, body: dict[str, Any]) -> int:
    """Rough prompt size (whitespace words, at least 1): the fake's 'input tokens'."""
    if fmt == "openai-fim":
        texts = [_text_of(body.get("prompt")), _text_of(body.get("suffix"))]
    elif fmt == "gemini":
        texts = [_text_of(c) for c in body.get("contents") or () if isinstance(c, dict)]
        texts.append(_text_of(body.get("systemInstruction")))
    else:
        texts = [_text_of(m.get("content")) for m in body.get("messages") or () if isinstance(m, dict)]
        texts.append(_text_of(body.get("system")))
    return max(1, sum(len(t.split()) for t in texts))


def go_duration(seconds: float) -> str:
    """OpenAI's x-ratelimit-reset-* style: '12ms', '1s', '2.5s', '6m0s', '1h2m3s'."""
    if seconds < 1:
        return f"{round(seconds * 1000)}ms"
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    out = f"{int(hours)}h" if hours else ""
    if hours or minutes:
        out += f"{int(minutes)}m"
    return out + f"{round(secs, 3):g}s"


def rfc3339_in(seconds: float) -> str:
    return (datetime.now(UTC) + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")


def retry_headers(hint: str | None, after: float) -> dict[str, str]:
    # Retry-After is written with %g so tests can ask for sub-second waits; clients should parse a float.
    if hint == "retry-after":
        return {"Retry-After": f"{after:g}"}
    if hint == "openai-reset":
        return {
            "x-ratelimit-limit-requests": "60",
            "x-ratelimit-remaining-requests": "0",
            "x-ratelimit-reset-requests": go_duration(after),
        }
    if hint == "anthropic-reset":
        return {
            "retry-after": f"{after:g}",
            "anthropic-ratelimit-requests-limit": "50",
            "anthropic-ratelimit-requests-remaining": "0",
            "anthropic-ratelimit-requests-reset": rfc3339_in(after),
        }
    return {}


# --- errors -------------------------------------------------------------------------------------------------------

_OPENAI_ERRORS: dict[str, tuple[str, str, str | None, str | None]] = {  # kind -> message, type, param, code
    "auth": (
        (
            "Incorrect API key provided: sk-fake***. You can find your API key at "
            "https://platform.openai.com/account/api-keys."
        ),
        "invalid_request_error",
        None,
        "invalid_api_key",
    ),
    "missing_key": (
        (
            "You didn't provide an API key. You need to provide your API key in an Authorization header "
            "using Bearer auth (i.e. Authorization: Bearer YOUR_KEY)."
        ),
        "invalid_request_error",
        None,
        "invalid_api_key",
    ),
    # Real 429s say type "requests"/"tokens" (or "insufficient_quota"); the code is what clients key on.
    "rate_limit": (
        "Rate limit reached for requests per min (RPM): Limit 60, Used 60, Requested 1.",
        "requests",
        None,
        "rate_limit_exceeded",
    ),
    "context_length": (
        (
            "This model's maximum context length is 128000 tokens. However, your messages resulted in "
            "250000 tokens. Please reduce the length of the messages."
        ),
        "invalid_request_error",
        "messages",
        "context_length_exceeded",
    ),
    "server_error": (
        "The server had an error while processing your request. Sorry about that!",
        "server_error",
        None,
        None,
    ),
    "unavailable": ("The engine is currently overloaded, please try again later.", "server_error", None, None),
}
_ANTHROPIC_ERRORS = {
    "auth": ("authentication_error", "invalid x-api-key"),
    "rate_limit": ("rate_limit_error", "Number of requests has exceeded your per-minute rate limit."),
    "context_length": ("invalid_request_error", "prompt is too long: 250000 tokens > 200000 maximum"),
    "server_error": ("api_error", "Internal server error"),
    "unavailable": ("api_error", "Service unavailable"),
    "overloaded": ("overloaded_error", "Overloaded"),
}
_ANTHROPIC_BY_STATUS = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    529: "overloaded_error",
}
_GEMINI_ERRORS = {
    # A wrong key is a 400 INVALID_ARGUMENT with reason API_KEY_INVALID on the real API (a missing one is a 403).
    "auth": (400, "API key not valid. Please pass a valid API key."),
    "missing_key": (
        403,
        (
            "Method doesn't allow unregistered callers (callers without established identity). "
            "Please use API Key or other form of API consumer identity to call this API."
        ),
    ),
    "rate_limit": (429, "You exceeded your current quota, please check your plan and billing details."),
    "context_length": (400, "The input token count (1500000) exceeds the maximum number of tokens allowed (1048576)."),
    "server_error": (
        500,
        (
            "An internal error has occurred. Please retry or report in "
            "https://developers.generativeai.google/guide/troubleshooting"
        ),
    ),
    "unavailable": (503, "The model is overloaded. Please try again later."),
}


def error_status(fmt: str, kind: str) -> int:
    if kind == "overloaded":
        return 529 if fmt == "anthropic" else 503
    if fmt == "gemini" and kind in _GEMINI_ERRORS:
        return _GEMINI_ERRORS[kind][0]
    return ERROR_STATUS.get(kind, 400)


def error_body(
    fmt: str, kind: str | None, status: int, message: str | None = None, hint: str | None = None, after: float = 0.0
) -> dict[str, Any]:
    """The provider's error JSON for a scripted kind, or a generic one for a bare status (kind None)."""
    if fmt == "anthropic":
        etype, msg = _ANTHROPIC_ERRORS.get(kind or "", (None, None))
        if etype is None:
            etype = _ANTHROPIC_BY_STATUS.get(status, "api_error" if status >= 500 else "invalid_request_error")
        return {
            "type": "error",
            "error": {"type": etype, "message": message or msg or f"HTTP {status}"},
            "request_id": "req_fake",
        }
    if fmt == "gemini":
        gstatus = GOOGLE_STATUS.get(status, "UNKNOWN")
        msg = message or _GEMINI_ERRORS.get("unavailable" if kind == "overloaded" else kind or "", (0, None))[1]
        err: dict[str, Any] = {"code": status, "message": msg or f"HTTP {status}", "status": gstatus}
        if kind == "auth":
            err["details"] = [
                {
                    "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                    "reason": "API_KEY_INVALID",
                    "domain": "googleapis.com",
                    "metadata": {"service": "generativelanguage.googleapis.com"},
                }
            ]
        elif hint == "gemini-retryinfo":
            err["details"] = [
                {
                    "@type": "type.googleapis.com/google.rpc.QuotaFailure",
                    "violations": [
                        {
                            "quotaMetric": "generativelanguage.googleapis.com/generate_content_requests",
                            "quotaId": "GenerateRequestsPerMinutePerProjectPerModel",
                            "quotaValue": "15",
                        }
                    ],
                },
                {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": f"{after:g}s"},
            ]
        return {"error": err}
    msg, etype, param, code = _OPENAI_ERRORS.get(
        "unavailable" if kind == "overloaded" else kind or "", (None, None, None, None)
    )
    if etype is None:
        etype = "server_error" if status >= 500 else "invalid_request_error"
    return {"error": {"message": message or msg or f"HTTP {status}", "type": etype, "param": param, "code": code}}


def stream_error_event(fmt: str, etype: str) -> bytes:
    """A mid-stream error in the format's own shape; `etype` is the provider's error type/status string."""
    if fmt == "anthropic":
        body = {"type": "error", "error": {"type": etype, "message": f"fake mid-stream {etype}"}}
        return b"event: error\ndata: " + _dumps(body).encode() + b"\n\n"
    if fmt == "gemini":
        body = {"error": {"code": GOOGLE_CODE.get(etype, 500), "message": f"fake mid-stream {etype}", "status": etype}}
        return b"data: " + _dumps(body).encode() + b"\r\n\r\n"
    body = {"error": {"message": f"fake mid-stream {etype}", "type": etype, "param": None, "code": None}}
    return b"data: " + _dumps(body).encode() + b"\n\n"


# --- successful answers -------------------------------------------------------------------------------------------


@dataclass(slots=True)
class Reply:
    """What one request is answered with; `pieces` are the stream deltas (their concatenation is the text)."""

    fmt: str
    rid: str
    model: str
    pieces: list[str]
    input_tokens: int
    output_tokens: int
    finish: str
    include_usage: bool = False
    created: int = 0

    def __post_init__(self) -> None:
        self.created = int(time.time())


def full_body(r: Reply) -> dict[str, Any]:
    """The non-streaming answer."""
    text = "".join(r.pieces)
    if r.fmt == "anthropic":
        return {
            "id": r.rid,
            "type": "message",
            "role": "assistant",
            "model": r.model,
            "content": [{"type": "text", "text": text}],
            "stop_reason": r.finish,
            "stop_sequence": None,
            "usage": {"input_tokens": r.input_tokens, "output_tokens": r.output_tokens},
        }
    if r.fmt == "gemini":
        return {
            "candidates": [
                {"content": {"role": "model", "parts": [{"text": text}]}, "finishReason": r.finish, "index": 0}
            ],
            "usageMetadata": _gemini_usage(r),
            "modelVersion": r.model,
        }
    usage = _openai_usage(r)
    if r.fmt == "openai-fim":
        return {
            "id": r.rid,
            "object": "text_completion",
            "created": r.created,
            "model": r.model,
            "choices": [{"text": text, "index": 0, "logprobs": None, "finish_reason": r.finish}],
            "usage": usage,
        }
    return {
        "id": r.rid,
        "object": "chat.completion",
        "created": r.created,
        "model": r.model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text, "refusal": None},
                "logprobs": None,
                "finish_reason": r.finish,
            }
        ],
        "usage": usage,
    }


def _openai_usage(r: Reply) -> dict[str, int]:
    return {
        "prompt_tokens": r.input_tokens,
        "completion_tokens": r.output_tokens,
        "total_tokens": r.input_tokens + r.output_tokens,
    }


def _gemini_usage(r: Reply) -> dict[str, int]:
    return {
        "promptTokenCount": r.input_tokens,
        "candidatesTokenCount": r.output_tokens,
        "totalTokenCount": r.input_tokens + r.output_tokens,
    }


def _sse(event: str | None, body: dict[str, Any]) -> bytes:
    head = b"event: " + event.encode() + b"\n" if event else b""
    return head + b"data: " + _dumps(body).encode() + b"\n\n"


def prelude(r: Reply) -> list[bytes]:
    """Events before the first content delta."""
    if r.fmt == "anthropic":
        msg = {
            "id": r.rid,
            "type": "message",
            "role": "assistant",
            "content": [],
            "model": r.model,
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": r.input_tokens, "output_tokens": 1},
        }
        return [
            _sse("message_start", {"type": "message_start", "message": msg}),
            _sse(
                "content_block_start",
                {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
            ),
            _sse("ping", {"type": "ping"}),
        ]
    if r.fmt == "openai":  # the real API opens with a role-only delta whose content is ""
        return [_openai_chunk(r, {"role": "assistant", "content": "", "refusal": None}, None)]
    return []


def _openai_chunk(r: Reply, delta: dict[str, Any], finish: str | None) -> bytes:
    if r.fmt == "openai-fim":
        choice = {"text": delta.get("content", ""), "index": 0, "logprobs": None, "finish_reason": finish}
        body: dict[str, Any] = {
            "id": r.rid,
            "object": "text_completion",
            "created": r.created,
            "model": r.model,
            "choices": [choice],
        }
    else:
        body = {
            "id": r.rid,
            "object": "chat.completion.chunk",
            "created": r.created,
            "model": r.model,
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        }
    if r.include_usage:  # with include_usage every chunk carries "usage": null until the last one
        body["usage"] = None
    return _sse(None, body)


def content_event(r: Reply, piece: str, final: bool) -> bytes:
    """One content delta. Gemini puts finishReason and usage on its last content chunk (`final`)."""
    if r.fmt == "anthropic":
        return _sse(
            "content_block_delta",
            {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": piece}},
        )
    if r.fmt == "gemini":
        cand: dict[str, Any] = {"content": {"role": "model", "parts": [{"text": piece}]}, "index": 0}
        body: dict[str, Any] = {"candidates": [cand], "modelVersion": r.model}
        if final:
            cand["finishReason"] = r.finish
            body["usageMetadata"] = _gemini_usage(r)
        return b"data: " + _dumps(body).encode() + b"\r\n\r\n"
    return _openai_chunk(r, {"content": piece}, None)


def epilogue(r: Reply) -> list[bytes]:
    """Events after the last content delta (the terminators a client must see)."""
    if r.fmt == "anthropic":
        return [
            _sse("content_block_stop", {"type": "content_block_stop", "index": 0}),
            _sse(
                "message_delta",
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": r.finish, "stop_sequence": None},
                    "usage": {"output_tokens": r.output_tokens},
                },
            ),
            _sse("message_stop", {"type": "message_stop"}),
        ]
    if r.fmt == "gemini":  # an empty answer still needs one candidate carrying finishReason
        return [] if r.pieces else [content_event(r, "", True)]
    out = [_openai_chunk(r, {}, r.finish)]
    if r.include_usage:
        body = {
            "id": r.rid,
            "object": "text_completion" if r.fmt == "openai-fim" else "chat.completion.chunk",
            "created": r.created,
            "model": r.model,
            "choices": [],
            "usage": _openai_usage(r),
        }
        out.append(_sse(None, body))
    out.append(b"data: [DONE]\n\n")
    return out


def models_list(fmt: str, models: list[str]) -> dict[str, Any]:
    if fmt == "anthropic":
        data = [{"type": "model", "id": m, "display_name": m, "created_at": "2025-01-01T00:00:00Z"} for m in models]
        return {
            "data": data,
            "has_more": False,
            "first_id": models[0] if models else None,
            "last_id": models[-1] if models else None,
        }
    if fmt == "gemini":
        return {
            "models": [
                {
                    "name": f"models/{m}",
                    "displayName": m,
                    "inputTokenLimit": 1048576,
                    "outputTokenLimit": 8192,
                    "supportedGenerationMethods": ["generateContent", "countTokens"],
                }
                for m in models
            ]
        }
    return {"object": "list", "data": [{"id": m, "object": "model", "created": 0, "owned_by": "fake"} for m in models]}


def dumps(obj: Any) -> bytes:
    return _dumps(obj).encode()
