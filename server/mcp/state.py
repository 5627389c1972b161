"""What every handler shares: the facade and the default roots, set up by the lifespan;
and the resolvers that ask the client for its roots when a call needs files."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mcp.server.elicitation import AcceptedElicitation
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.resolve import ListRoots
from mcp_types import ListRootsResult

from orchestrator.core import Orchestrator

from .paths import Roots

# The SDK wraps every resolved value in `AcceptedElicitation[Any]`. Pydantic caches a
# parametrized class only while something holds it, so without this reference each tool call
# would build the class anew (half a millisecond, more than the rest of the call's overhead).
_ACCEPTED = AcceptedElicitation[Any]


@dataclass
class AppState:
    orch: Orchestrator
    roots: Roots  # used when the client declares no roots


def app(ctx: Context) -> AppState:
    return ctx.request_context.lifespan_context  # type: ignore[no-any-return]


def _ask_roots(ctx: Context) -> ListRoots | None:
    caps = ctx.client_capabilities
    return ListRoots() if caps is not None and caps.roots is not None else None


# One resolver per way a tool names files, so a call without files never asks the client.
# Async, or the SDK would run each on a worker thread.
async def roots_if_path(ctx: Context, path: str | None) -> ListRoots | None:
    return _ask_roots(ctx) if path else None


async def roots_if_files(ctx: Context, files: list[str] | None) -> ListRoots | None:
    return _ask_roots(ctx) if files else None


async def roots_always(ctx: Context) -> ListRoots | None:
    return _ask_roots(ctx)


def roots(ctx: Context, listed: ListRootsResult | None) -> Roots:
    """The client's roots, or the server's default when it has none."""
    default = app(ctx).roots
    if listed is None:
        return default
    return Roots.from_uris((str(r.uri) for r in listed.roots), default)
