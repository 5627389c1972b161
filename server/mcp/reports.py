"""What the orchestrator knows about itself: the catalog, the ledger and the settings, for
the `list_models` and `usage_report` tools and the resources."""

from __future__ import annotations

import json
from typing import Annotated, Literal

from mcp.server.mcpserver import Context
from mcp_types import CallToolResult
from pydantic import Field

from orchestrator.core import Orchestrator
from orchestrator.errors import redact
from orchestrator.settings import effective_settings

from . import models as out
from .errors import tool_errors
from .state import app

Period = Literal["day", "month", "all"]
Grouping = Literal["provider", "model", "kind", "task", "front_end"]
ProviderName = Literal["openai", "anthropic", "gemini", "openrouter", "ollama"]
CapabilityName = Literal["chat", "fim", "json", "tools", "vision"]


def catalog(
    orch: Orchestrator,
    provider: str | None = None,
    capability: str | None = None,
    max_price: float | None = None,
) -> out.ModelsOut:
    wanted = {m.id for m in orch.catalog.filter(provider, capability, max_price)}
    return out.models((info, ok) for info, ok in orch.models() if info.id in wanted)


async def usage(orch: Orchestrator, period: str = "month", by: str = "provider") -> out.UsageOut:
    rows, budget = await orch.usage(period, by)
    return out.UsageOut.of(period, by, rows, budget)


def config(orch: Orchestrator) -> str:
    """Every effective setting with its source; keys and headers redacted."""
    rows = [
        {"key": key, "value": redact(value) if isinstance(value, str) else value, "source": source}
        for key, value, source in effective_settings(orch.settings)
    ]
    return json.dumps(rows, separators=(",", ":"))


async def list_models(
    ctx: Context,
    provider: ProviderName | None = None,
    capability: CapabilityName | None = None,
    max_price: Annotated[float | None, Field(ge=0, description="max USD per 1M input tokens")] = None,
) -> Annotated[CallToolResult, out.ModelsOut]:
    """Models in the catalog with prices, limits and availability."""
    with tool_errors():
        return out.result(catalog(app(ctx).orch, provider, capability, max_price))


async def usage_report(
    ctx: Context, period: Period = "month", by: Grouping = "provider"
) -> Annotated[CallToolResult, out.UsageOut]:
    """Spend and calls from the ledger, grouped, with the monthly budget."""
    with tool_errors():
        return out.result(await usage(app(ctx).orch, period, by))


TOOLS = (list_models, usage_report)
