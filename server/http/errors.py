"""Error bodies: two shapes, one table of codes, and the mapping from the core's errors.

Under `/v1/` the body is OpenAI's, so that every OpenAI SDK raises the right exception:

    {"error": {"message": "...", "type": "...", "code": "budget_exceeded", ...extra}}

Everywhere else it is the flat shape of the `/api/ai/` contract:

    {"error": "budget_exceeded", "message": "...", ...extra}

    status  code                        when
    400     invalid_request             malformed JSON, a bad field, an unknown kind or profile
    401     invalid_api_key             a missing or wrong client key (when keys are on)
    404     not_found                   no such route, conversation or provider
    404     model_not_found             a model id that is not in the catalog
    405     method_not_allowed
    413     request_too_large           a body over the configured limit
    429     budget_exceeded             the monthly budget is spent; Retry-After: until it resets
    500     config_error                the server's configuration is wrong (names the file and key)
    500     internal_error              a bug: logged with its traceback
    502     provider_error              a provider refused the request itself (not an outage)
    502     incomplete_response         a provider's answer was cut after it began
    503     all_providers_unavailable   every candidate failed; each provider's state, Retry-After
    503     provider_not_configured     no provider can serve the request
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from pydantic_core import to_json
from starlette.responses import Response

from orchestrator.errors import (
    AllProvidersUnavailable,
    AuthenticationError,
    BadResponse,
    BudgetExceeded,
    ConfigError,
    ContextWindowError,
    InvalidInputError,
    OrchestratorError,
    ProviderError,
    ProviderNotConfigured,
    ProviderTimeout,
    ProviderUnavailable,
    RateLimitError,
    UnknownModelError,
)
from orchestrator.resilience import IncompleteStream

if TYPE_CHECKING:
    from orchestrator.core import Orchestrator

# OpenAI's `type` for each of our codes (what its SDKs and tools switch on).
_OPENAI_TYPES = {
    "invalid_request": "invalid_request_error",
    "invalid_api_key": "invalid_request_error",
    "not_found": "invalid_request_error",
    "model_not_found": "invalid_request_error",
    "method_not_allowed": "invalid_request_error",
    "request_too_large": "invalid_request_error",
    "budget_exceeded": "insufficient_quota",
    "internal_error": "server_error",
    "provider_error": "server_error",
    "incomplete_response": "server_error",
    "all_providers_unavailable": "server_error",
    "provider_not_configured": "server_error",
}
# Each failed provider's state, in the words of the error contract.
_STATES: tuple[tuple[type[ProviderError], str], ...] = (
    (RateLimitError, "rate_limit_exceeded"),
    (AuthenticationError, "authentication_failed"),
    (ProviderTimeout, "timeout"),
    (ContextWindowError, "context_length_exceeded"),
    (BadResponse, "bad_response"),
    (ProviderUnavailable, "service_unavailable"),
)


@dataclass
class ApiError(Exception):
    """An answer that is an error: raised by the endpoints, rendered by the app's handler."""

    status: int
    code: str
    message: str
    extra: dict[str, Any] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        return f"{self.status} {self.code}: {self.message}"


def openai_flavour(path: str) -> bool:
    return path == "/v1" or path.startswith("/v1/")


def body(err: ApiError, *, openai: bool) -> dict[str, Any]:
    if openai:
        inner = {"message": err.message, "type": _OPENAI_TYPES.get(err.code, "server_error"), "code": err.code}
        return {"error": {**inner, **err.extra}}
    return {"error": err.code, "message": err.message, **err.extra}


def render(err: ApiError, path: str) -> Response:
    return Response(
        to_json(body(err, openai=openai_flavour(path))),
        status_code=err.status,
        headers=err.headers,
        media_type="application/json",
    )


def unauthorized(has_key: bool) -> ApiError:
    message = (
        "the API key is not valid (revoked or mistyped)"
        if has_key
        else "an API key is required: send `Authorization: Bearer KEY` (create one with `orchestrator keys create NAME`)"
    )
    # x-should-retry: OpenAI's SDKs would otherwise retry what cannot get better.
    return ApiError(
        401,
        "invalid_api_key",
        message,
        extra={"action": "create a key with `orchestrator keys create NAME` and send it as a bearer token"},
        headers={"WWW-Authenticate": 'Bearer realm="orchestrator"', "x-should-retry": "false"},
    )


def too_large(limit: int) -> ApiError:
    return ApiError(413, "request_too_large", f"the request body is over the limit of {limit:,} bytes")


def provider_state(error: ProviderError) -> str:
    if type(error).__name__ == "CircuitOpen":
        return "circuit_open"
    for cls, state in _STATES:
        if isinstance(error, cls):
            return state
    return "error"


async def from_core(exc: OrchestratorError, orch: Orchestrator) -> ApiError:
    """The answer for an error the core raised."""
    if isinstance(exc, BudgetExceeded):
        return await _budget(exc, orch)
    if isinstance(exc, AllProvidersUnavailable):
        return _all_down(exc, orch)
    if isinstance(exc, UnknownModelError):
        return ApiError(404, "model_not_found", str(exc), extra={"param": "model"})
    if isinstance(exc, InvalidInputError):
        return ApiError(400, "invalid_request", str(exc))
    if isinstance(exc, ProviderNotConfigured):
        return ApiError(503, "provider_not_configured", str(exc), headers={"x-should-retry": "false"})
    if isinstance(exc, IncompleteStream):
        return ApiError(502, "incomplete_response", str(exc), extra={"provider": exc.provider})
    if isinstance(exc, ProviderError):
        return ApiError(
            502, "provider_error", str(exc), extra={"provider": exc.provider, "provider_status": exc.status}
        )
    if isinstance(exc, ConfigError):
        return ApiError(500, "config_error", str(exc))
    return ApiError(500, "internal_error", str(exc))


async def _budget(exc: BudgetExceeded, orch: Orchestrator) -> ApiError:
    state = await orch.ledger.budget_state()
    limit = state.budget_usd if state.budget_usd is not None else exc.budget
    reset = _next_month(time.time())
    extra = {
        "budget": {
            "period": state.period,
            "monthly_limit": limit,
            "spent": round(state.spent_usd, 6),
            "reserved": round(state.reserved_usd, 6),
            "used_percentage": round(state.fraction * 100, 1),
            "resets_at": datetime.fromtimestamp(reset, UTC).isoformat().replace("+00:00", "Z"),
        }
    }
    retry = max(1, math.ceil(reset - time.time()))
    return ApiError(
        429, "budget_exceeded", str(exc), extra=extra, headers={"Retry-After": str(retry), "x-should-retry": "false"}
    )


def _all_down(exc: AllProvidersUnavailable, orch: Orchestrator) -> ApiError:
    details: dict[str, str] = {}
    providers: dict[str, dict[str, Any]] = {}
    for key, error in exc.errors.items():
        name = error.provider or key.split("/", 1)[0]
        if name in details:
            continue
        details[name] = provider_state(error)
        providers[name] = {
            "state": details[name],
            "circuit": orch.resilience.breaker(name).state,
            "message": str(error),
        }
    retry = max(1, math.ceil(exc.retry_after)) if exc.retry_after is not None else _default_retry(orch)
    extra = {"details": details, "providers": providers, "retry_after": retry, "fallback_available": False}
    return ApiError(
        503,
        "all_providers_unavailable",
        "All AI providers are currently unavailable",
        extra=extra,
        headers={"Retry-After": str(retry)},
    )


def _default_retry(orch: Orchestrator) -> int:
    # No provider said when: the circuit cooldown is when we will try them again.
    return max(1, math.ceil(orch.settings.resilience.cooldown))


def _next_month(now: float) -> float:
    day = datetime.fromtimestamp(now, UTC)
    return datetime(day.year + day.month // 12, day.month % 12 + 1, 1, tzinfo=UTC).timestamp()
