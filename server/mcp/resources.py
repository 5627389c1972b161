"""Resources: the catalog, the ledger by period and the effective configuration, as JSON.

The SDK gives static resources no request context, so they read the facade from the
`AppState` the server's lifespan fills in (one per server instance, never a global).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ResourceError

from orchestrator.core import Orchestrator
from orchestrator.ledger import PERIODS

from . import reports

JSON = "application/json"


def register(server: MCPServer[Any], current: Callable[[], Orchestrator]) -> None:
    @server.resource(
        "orchestrator://models", name="models", description="Model catalog, prices, availability", mime_type=JSON
    )
    def models() -> str:
        return reports.catalog(current()).model_dump_json()

    @server.resource(
        "orchestrator://usage/{period}",
        name="usage",
        description="Spend by provider and budget; period: day, month or all",
        mime_type=JSON,
    )
    async def usage(period: str) -> str:
        if period not in PERIODS:
            raise ResourceError(f"unknown period {period!r}; use one of: {', '.join(PERIODS)}")
        return (await reports.usage(current(), period)).model_dump_json()

    @server.resource(
        "orchestrator://config",
        name="config",
        description="Effective settings and sources, keys redacted",
        mime_type=JSON,
    )
    def config() -> str:
        return reports.config(current())
