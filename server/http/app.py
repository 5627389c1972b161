"""The gateway's Starlette app, built around a ready `Orchestrator`.

    app = create_app(orch, GatewayConfig(auth=True, keys_file=keys_path(settings.data_dir)))

The app owns no model state: the orchestrator is created and closed by whoever serves the
app (`orchestrator serve`, a test). Endpoints reach it as `request.app.state.orch`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

from orchestrator.errors import OrchestratorError

from . import ai_api, openai_api, page, providers, usage
from .auth import KeyChecker, KeyStore
from .errors import ApiError, from_core, render
from .metrics import Metrics, metrics_endpoint
from .middleware import GatewayMiddleware

if TYPE_CHECKING:
    from orchestrator.core import Orchestrator

log = logging.getLogger(__name__)
DEFAULT_MAX_BODY = 4 * 1024 * 1024  # a large source file with room to spare
STATIC = Path(__file__).parent / "static"


@dataclass
class GatewayConfig:
    auth: bool = True
    keys_file: Path | None = None  # required when auth is on
    cors_origins: list[str] = field(default_factory=list)  # empty: no CORS headers at all
    max_body: int = DEFAULT_MAX_BODY


def routes() -> list[Route | Mount]:
    return [
        Route("/v1/chat/completions", openai_api.chat_completions, methods=["POST"]),
        Route("/v1/models", openai_api.list_models, methods=["GET"]),
        Route("/v1/models/rankings", openai_api.model_rankings, methods=["GET"]),
        Route("/api/ai/chat", ai_api.chat, methods=["POST"]),
        Route("/api/ai/code-analysis", ai_api.code_analysis, methods=["POST"]),
        Route("/api/ai/conversations", ai_api.list_conversations, methods=["GET"]),
        Route("/api/ai/conversations/{conversation_id}", ai_api.get_conversation, methods=["GET"]),
        Route("/api/ai/usage", usage.usage, methods=["GET"]),
        Route("/api/ai/usage/details", usage.usage_details, methods=["GET"]),
        Route("/api/ai/providers", providers.list_providers, methods=["GET"]),
        Route("/api/ai/providers/{name}/test", providers.test_provider, methods=["POST"]),
        Route("/health", providers.health, methods=["GET"]),
        Route("/metrics", metrics_endpoint, methods=["GET"]),
        Route("/", page.index, methods=["GET"]),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]


def create_app(orch: Orchestrator, config: GatewayConfig | None = None) -> Starlette:
    config = config or GatewayConfig()
    keys: KeyChecker | None = None
    if config.auth:
        if config.keys_file is None:
            raise ValueError("auth is on but no keys file was given")
        keys = KeyChecker(KeyStore(config.keys_file))
    metrics = Metrics()
    table = routes()
    middleware = []
    if config.cors_origins:
        middleware.append(
            Middleware(
                CORSMiddleware,  # type: ignore[arg-type]
                allow_origins=config.cors_origins,
                allow_methods=["GET", "POST", "OPTIONS"],
                allow_headers=["Authorization", "Content-Type", "x-api-key", "Cache-Control"],
                expose_headers=["x-orchestrator-model", "x-orchestrator-reason", "x-orchestrator-cache"],
                max_age=600,
            )
        )
    middleware.append(
        Middleware(
            GatewayMiddleware,  # type: ignore[arg-type]
            keys=keys,
            max_body=config.max_body,
            metrics=metrics,
            route_of=_route_labels(table),
        )
    )
    app = Starlette(
        routes=table,
        middleware=middleware,
        exception_handlers={
            ApiError: _api_error,
            OrchestratorError: _core_error,
            HTTPException: _http_error,
            Exception: _internal_error,
        },
    )
    app.state.orch = orch
    app.state.config = config
    app.state.metrics = metrics
    app.state.keys = keys
    return app


def _route_labels(table: list[Route | Mount]) -> Callable[[Scope], str]:
    """The metrics label of a request: its route's template, never the raw path (ids would explode it)."""
    by_endpoint: dict[Any, str] = {r.endpoint: r.path for r in table if isinstance(r, Route)}
    plain = [r for r in table if isinstance(r, Route)]

    def label(scope: Scope) -> str:
        found = by_endpoint.get(scope.get("endpoint"))
        if found is not None:
            return found
        if scope["path"].startswith("/static/"):
            return "/static"
        # Refused before routing (a bad key, too large): match the table, a few regexes.
        for route in plain:
            if route.path_regex.match(scope["path"]):
                return route.path
        return "unmatched"

    return label


async def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return render(exc, request.url.path)


async def _core_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, OrchestratorError)
    err = await from_core(exc, request.app.state.orch)
    if err.status >= 500 and err.code != "all_providers_unavailable":
        log.warning("%s %s: %s", request.method, request.url.path, err)
    return render(err, request.url.path)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404:
        err = ApiError(404, "not_found", f"no route {request.method} {request.url.path}")
    elif exc.status_code == 405:
        err = ApiError(405, "method_not_allowed", f"{request.method} is not allowed on {request.url.path}")
    else:
        err = ApiError(exc.status_code, "invalid_request", str(exc.detail))
    return render(err, request.url.path)


async def _internal_error(request: Request, exc: Exception) -> Response:
    # Starlette re-raises it after this answer, and the server logs it with its traceback.
    return render(ApiError(500, "internal_error", "internal error; the server log has the details"), request.url.path)
