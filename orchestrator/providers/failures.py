"""HTTP failures → the error tree, with the provider's retry hint parsed.

Retry hints, in the order trusted: `Retry-After` (seconds or an HTTP date) and
`retry-after-ms`; OpenAI's `x-ratelimit-reset-{requests,tokens}` durations ("1s",
"6m0s", "12ms") for whichever budget is exhausted; Anthropic's
`anthropic-ratelimit-*-reset` RFC 3339 times; Gemini's `RetryInfo.retryDelay` in the body.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

from ..errors import (
    AuthenticationError,
    BadResponse,
    ContextWindowError,
    InvalidRequestError,
    ProviderError,
    ProviderTimeout,
    ProviderUnavailable,
    RateLimitError,
)

_CONTEXT = re.compile(
    r"context[_ ]length|context window|maximum context|too many tokens|prompt is too long|"
    r"exceeds the maximum number of tokens|input is too long|reduce the length",
    re.IGNORECASE,
)
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")


def parse_duration(text: str) -> float | None:
    """'6m0s' → 360.0, '12ms' → 0.012, '1.5' → 1.5, '45.8s' → 45.8."""
    text = text.strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    parts = _DURATION.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text.replace(" ", ""):
        return None
    scale = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
    return sum(float(n) * scale[u] for n, u in parts)


def _until(moment: str, now: datetime) -> float | None:
    try:
        when = datetime.fromisoformat(moment.strip())
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


def retry_after(headers: Mapping[str, str], body: Any = None, *, now: datetime | None = None) -> float | None:
    now = now or datetime.now(UTC)
    lower = {k.lower(): v for k, v in headers.items()}
    if "retry-after-ms" in lower:
        ms = parse_duration(lower["retry-after-ms"])
        if ms is not None:
            return ms / 1000
    if "retry-after" in lower:
        value = lower["retry-after"].strip()
        seconds = parse_duration(value)
        if seconds is not None:
            return seconds
        try:
            return max(0.0, (parsedate_to_datetime(value) - now).total_seconds())
        except (TypeError, ValueError):
            pass
    hints = []
    for kind in ("requests", "tokens", "input-tokens", "output-tokens"):
        reset = lower.get(f"x-ratelimit-reset-{kind}")
        if reset is not None and lower.get(f"x-ratelimit-remaining-{kind}", "0").strip() == "0":
            hints.append(parse_duration(reset))
        anthropic = lower.get(f"anthropic-ratelimit-{kind}-reset")
        if anthropic is not None and lower.get(f"anthropic-ratelimit-{kind}-remaining", "0").strip() == "0":
            hints.append(_until(anthropic, now))
    found = [h for h in hints if h is not None]
    if found:
        return max(found)
    return _gemini_retry_delay(body)


def _gemini_retry_delay(body: Any) -> float | None:
    details = body.get("error", {}).get("details") if isinstance(body, dict) else None
    for item in details or []:
        if isinstance(item, dict) and str(item.get("@type", "")).endswith("google.rpc.RetryInfo"):
            return parse_duration(str(item.get("retryDelay", "")))
    return None


def error_message(body: Any, raw: str) -> str:
    """The provider's own words: OpenAI/Gemini `error.message`, Anthropic `error.message`."""
    if isinstance(body, dict):
        err = body.get("error")
        if isinstance(err, dict) and err.get("message"):
            return str(err["message"])[:500]
        if isinstance(err, str):
            return err[:500]
        if body.get("message"):
            return str(body["message"])[:500]
    return raw.strip()[:300] or "(empty body)"


def from_status(provider: str, status: int, headers: Mapping[str, str], raw: bytes) -> ProviderError:
    text = raw.decode("utf-8", errors="replace")
    try:
        body = json.loads(text) if text else None
    except ValueError:
        body = None
    message = error_message(body, text)
    code = ""
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        err = body["error"]
        code = str(err.get("code") or err.get("type") or err.get("status") or "")
    where = f"{provider} answered {status}: {message}"
    # Gemini answers a wrong key with 400 INVALID_ARGUMENT; only the details say why.
    if status in (401, 403) or _reason_is(body, "API_KEY_INVALID"):
        return AuthenticationError(f"{where} (check the {provider} API key)", provider=provider, status=status)
    if status == 429 and code not in ("insufficient_quota",):
        return RateLimitError(where, provider=provider, status=status, retry_after=retry_after(headers, body))
    if status == 429:  # out of credit: waiting does not help
        return AuthenticationError(f"{where} (quota exhausted)", provider=provider, status=status)
    if status == 413 or code == "context_length_exceeded" or (status == 400 and _CONTEXT.search(message)):
        return ContextWindowError(where, provider=provider, status=status)
    if status in (408, 504):
        return ProviderTimeout(where, provider=provider, status=status)
    if status == 529 or status >= 500 or status in (409, 425):
        return ProviderUnavailable(where, provider=provider, status=status)
    if 400 <= status < 500:
        return InvalidRequestError(where, provider=provider, status=status)
    return BadResponse(f"{provider} answered with unexpected status {status}", provider=provider, status=status)


def _reason_is(body: Any, reason: str) -> bool:
    details = body.get("error", {}).get("details") if isinstance(body, dict) else None
    return any(isinstance(d, dict) and d.get("reason") == reason for d in details or [])


def from_stream_error(provider: str, payload: Any) -> ProviderError:
    """An error reported inside a 200 stream (Anthropic `error` event, OpenAI/Gemini error object)."""
    err = payload.get("error", payload) if isinstance(payload, dict) else {}
    kind = str(err.get("type") or err.get("status") or err.get("code") or "") if isinstance(err, dict) else ""
    message = error_message(payload, str(payload))
    where = f"{provider} reported an error mid-stream ({kind or 'unknown'}): {message}"
    if kind in ("overloaded_error", "api_error", "server_error", "UNAVAILABLE", "INTERNAL", "503", "500"):
        return ProviderUnavailable(where, provider=provider)
    if kind in ("rate_limit_error", "rate_limit_exceeded", "RESOURCE_EXHAUSTED", "429"):
        return RateLimitError(where, provider=provider, status=None, retry_after=_gemini_retry_delay(payload))
    if kind in ("authentication_error", "permission_error", "UNAUTHENTICATED", "PERMISSION_DENIED"):
        return AuthenticationError(where, provider=provider)
    if _CONTEXT.search(message):
        return ContextWindowError(where, provider=provider)
    return BadResponse(where, provider=provider)
