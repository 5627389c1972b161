"""`GET /api/ai/providers`, `POST /api/ai/providers/{name}/test` and `GET /health`.

A provider's health comes from its circuit breaker: `ok`, `degraded` (recent failures),
`recovering` (half-open: the next call is a probe), `down` (open) or `not_configured`.
The test sends one tiny request straight to the provider (no routing, no fallback, no
cache), priced and written to the ledger like any call, and leaves the circuit as it was.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from starlette.requests import Request
from starlette.responses import Response

from orchestrator import __version__
from orchestrator.catalog import ModelInfo
from orchestrator.engine import CallContext
from orchestrator.errors import BudgetExceeded, ProviderError
from orchestrator.providers.registry import how_to_configure
from orchestrator.routing import Candidate
from orchestrator.settings import PROVIDER_ALIASES, PROVIDERS
from orchestrator.types import Message
from orchestrator.types import Request as ModelRequest

from .errors import ApiError, provider_state
from .openai_api import client_label
from .responses import JSON, usd

if TYPE_CHECKING:
    from orchestrator.core import Orchestrator

PROBE_TIMEOUT = 30.0
PROBE_PROMPT = "Reply with the single word: pong"


def health_of(orch: Orchestrator, name: str) -> str:
    if name not in orch.settings.configured_providers():
        return "not_configured"
    breaker = orch.resilience.breaker(name)
    state = breaker.state
    if state == "open":
        return "down"
    if state == "half_open":
        return "recovering"
    return "degraded" if breaker.failures else "ok"


def provider_json(orch: Orchestrator, name: str) -> dict[str, Any]:
    settings = orch.settings
    breaker = orch.resilience.breaker(name)
    retry_at = breaker.retry_at
    return {
        "name": name,
        "configured": name in settings.configured_providers(),
        "in_priority": name in settings.routing.priority,
        "health": health_of(orch, name),
        "circuit": breaker.state,
        "consecutive_failures": breaker.failures,
        "retry_in": None if retry_at is None else max(0.0, round(retry_at - time.monotonic(), 1)),
        "base_url": _without_credentials(settings.base_url(name)),
        "default_model": settings.providers[name].default_model,
        "models": [m.id for m in orch.catalog.by_provider(name)],
    }


async def list_providers(request: Request) -> Response:
    orch: Orchestrator = request.app.state.orch
    return JSON({"providers": [provider_json(orch, name) for name in PROVIDERS]})


async def test_provider(request: Request) -> Response:
    orch: Orchestrator = request.app.state.orch
    raw = request.path_params["name"].lower()
    name = PROVIDER_ALIASES.get(raw, raw)
    if name not in PROVIDERS:
        raise ApiError(404, "not_found", f"no provider {raw!r}; known: {', '.join(PROVIDERS)}")
    result: dict[str, Any] = {"provider": name}
    if name not in orch.settings.configured_providers():
        error = {"type": "not_configured", "message": how_to_configure(name)}
        return JSON({**provider_json(orch, name), **result, "ok": False, "error": error})
    info = _probe_model(orch, name)
    probe = await _probe(orch, name, info, front_end=client_label(request))
    return JSON({**provider_json(orch, name), **result, **probe})


async def _probe(orch: Orchestrator, name: str, info: ModelInfo, *, front_end: str) -> dict[str, Any]:
    request = ModelRequest(
        model=info.model, messages=(Message(role="user", content=PROBE_PROMPT),), max_tokens=8, temperature=0.0
    )
    ctx = CallContext(task="probe", front_end=front_end)
    started = time.perf_counter()
    usage, error = None, None
    try:
        # Straight at this provider (no routing, retry or cache), priced and logged by the core.
        response = await orch.engine.call_once(
            Candidate(info=info, score=0.0), request, ctx, reason=f"provider test of {name}", timeout=PROBE_TIMEOUT
        )
        usage = response.usage
    except BudgetExceeded as exc:
        raise ApiError(429, "budget_exceeded", str(exc)) from None
    except ProviderError as exc:
        error = {"type": provider_state(exc), "message": str(exc), "status": exc.status}
    latency = (time.perf_counter() - started) * 1000
    return {
        "ok": error is None,
        "model": info.id,
        "latency_ms": round(latency, 1),
        "cost": usd(usage.cost_usd) if usage else 0.0,
        "error": error,
    }


def _probe_model(orch: Orchestrator, name: str) -> ModelInfo:
    """The provider's default model when the catalog has it, else its cheapest."""
    models = orch.catalog.by_provider(name)
    default = orch.settings.providers[name].default_model
    for info in models:
        if default and default in (info.id, info.model):
            return info
    if not models:
        raise ApiError(404, "not_found", f"the catalog has no model for {name}")
    return min(models, key=lambda m: m.cost(64, 8))


async def health(request: Request) -> Response:
    orch: Orchestrator = request.app.state.orch
    configured = orch.settings.configured_providers()
    providers = {name: {"configured": True, "circuit": orch.resilience.breaker(name).state} for name in configured}
    open_count = sum(1 for p in providers.values() if p["circuit"] == "open")
    if not configured:
        status = "ok"  # the built-in analyzers need no provider
    elif open_count == len(configured):
        status = "unavailable"
    else:
        status = "degraded" if open_count else "ok"
    return JSON({"status": status, "version": __version__, "providers": providers})


def _without_credentials(url: str) -> str:
    parts = urlsplit(url)
    if parts.username or parts.password:
        host = parts.hostname or ""
        netloc = f"{host}:{parts.port}" if parts.port else host
        return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
    return url
