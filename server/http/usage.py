"""`GET /api/ai/usage` (the contract's shape: totals, by provider, by model, the budget) and
`GET /api/ai/usage/details` (everything the usage page draws, in one call).
"""

from __future__ import annotations

import statistics
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response

from orchestrator.ledger import ALERT_LEVELS, PERIODS, BudgetState, Ledger, UsageRow

from .ai_api import iso
from .errors import ApiError
from .responses import JSON, usd

if TYPE_CHECKING:
    from orchestrator.core import Orchestrator

MAX_DAYS = 366


async def usage(request: Request) -> Response:
    orch: Orchestrator = request.app.state.orch
    period = _period(request)
    by_provider, budget = await orch.usage(period, "provider")
    by_model = await orch.ledger.summary(period=period, by="model")
    return JSON(
        {
            "period": _label(period, budget),
            "usage": _totals(by_provider),
            "by_provider": {r.key: _row(r) for r in by_provider},
            "by_model": {r.key: _row(r) for r in by_model},
            "budget": budget_json(budget),
        }
    )


async def usage_details(request: Request) -> Response:
    orch: Orchestrator = request.app.state.orch
    try:
        days = int(request.query_params.get("days", "30"))
    except ValueError:
        raise ApiError(400, "invalid_request", "days must be a number") from None
    days = min(max(days, 1), MAX_DAYS)
    by_model, budget = await orch.usage("month", "model")
    recent = await orch.ledger.recent(200)
    latencies = [r.latency_ms for r in recent if r.outcome == "ok" and not r.cache_hit]
    totals = _totals(by_model)
    return JSON(
        {
            "generated_at": iso(time.time()),
            "period": budget.period,
            "usage": totals,
            "cache": {
                "hits": totals["cache_hits"],
                "calls": totals["total_requests"],
                "hit_rate": totals["cache_hits"] / totals["total_requests"] if totals["total_requests"] else 0.0,
                "entries": (await orch.cache.stats())["entries"],
            },
            "latency": {
                "samples": len(latencies),
                "p50_ms": _quantile(latencies, 0.50),
                "p95_ms": _quantile(latencies, 0.95),
            },
            "daily": await daily(orch.ledger, days),
            "by_model": [{"model": r.key, **_row(r)} for r in by_model],
            "recent": [
                {
                    "time": iso(r.ts),
                    "model": r.model,
                    "task": r.kind or r.task,
                    "front_end": r.front_end,
                    "input_tokens": r.input_tokens,
                    "output_tokens": r.output_tokens,
                    "cost": usd(r.cost_usd),
                    "latency_ms": round(r.latency_ms, 1),
                    "cache_hit": r.cache_hit,
                    "outcome": r.outcome,
                    "reason": r.reason,
                }
                for r in recent[:50]
            ],
            "budget": budget_json(budget),
        }
    )


def budget_json(state: BudgetState) -> dict[str, Any]:
    return {
        "period": state.period,
        "monthly_limit": state.budget_usd,
        "spent": round(state.spent_usd, 6),
        "reserved": round(state.reserved_usd, 6),
        "remaining": None if state.remaining_usd is None else round(state.remaining_usd, 6),
        "used_percentage": round(state.fraction * 100, 1) if state.budget_usd is not None else None,
        "warning_threshold": 80,
        "alert_levels": list(ALERT_LEVELS),
        "alert_level": state.alert_level,
    }


async def daily(ledger: Ledger, days: int) -> list[dict[str, Any]]:
    """Spend, calls and tokens per UTC day for the last `days` days, today last, empty days included."""
    return [
        {"date": d.date, "calls": d.calls, "cost": usd(d.cost_usd), "tokens": d.tokens, "cache_hits": d.cache_hits}
        for d in await ledger.daily(days)
    ]


def _period(request: Request) -> str:
    period = request.query_params.get("period", "month")
    if period not in PERIODS:
        raise ApiError(400, "invalid_request", f"unknown period {period!r}; valid: {', '.join(PERIODS)}")
    return period


def _label(period: str, budget: BudgetState) -> str:
    if period == "month":
        return budget.period
    if period == "day":
        return datetime.now(UTC).date().isoformat()
    return "all"


def _row(r: UsageRow) -> dict[str, Any]:
    return {
        "tokens": r.input_tokens + r.output_tokens,
        "input_tokens": r.input_tokens,
        "output_tokens": r.output_tokens,
        "requests": r.calls,
        "cost": usd(r.cost_usd),
        "cache_hits": r.cache_hits,
        "errors": r.errors,
        "avg_latency_ms": round(r.avg_latency_ms or 0.0, 1),
    }


def _totals(rows: list[UsageRow]) -> dict[str, Any]:
    return {
        "total_tokens": sum(r.input_tokens + r.output_tokens for r in rows),
        "total_requests": sum(r.calls for r in rows),
        "total_cost": usd(sum(r.cost_usd for r in rows)),
        "cache_hits": sum(r.cache_hits for r in rows),
        "errors": sum(r.errors for r in rows),
    }


def _quantile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    if len(values) == 1:
        return round(values[0], 1)
    return round(statistics.quantiles(values, n=100, method="inclusive")[round(q * 100) - 1], 1)
