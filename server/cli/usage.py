"""`orchestrator usage`: what the ledger recorded, grouped, and where the monthly budget stands.

Reads the ledger; never creates it (a user checking spend before any call gets an answer,
not an empty database file).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from orchestrator.ledger import BudgetState, UsageRow

PERIODS = ("day", "month", "all")
GROUPS = ("provider", "model", "kind", "task", "front_end")
_HEADERS = ("calls", "tokens in", "tokens out", "cost $", "cache hits", "errors", "avg latency")


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "usage",
        help="spend and calls from the ledger, and the monthly budget",
        description="Sum the recorded calls over a period, grouped by provider, model, analysis kind, task "
        "or front end, with the monthly budget's state.",
    )
    p.add_argument("--period", choices=PERIODS, default="month", help="today, this month (UTC) or all time")
    p.add_argument("--by", choices=GROUPS, default="provider", help="group rows by this (default provider)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    import asyncio

    from orchestrator.settings import load_settings

    settings = load_settings()
    path = Path(settings.data_dir) / "ledger.db"
    period = getattr(args, "period", "month")
    by = getattr(args, "by", "provider")
    rows, state = asyncio.run(_read(path, settings.budget.monthly_usd, period, by))
    if getattr(args, "json", False):
        out = {"period": period, "by": by, "rows": [r.model_dump() for r in rows], "budget": state.model_dump()}
        print(json.dumps(out, indent=2))
        return 0
    if not path.exists():
        print("no calls recorded yet")
    elif not rows:
        print(f"no calls recorded {_PERIOD_WORDS[period]}")
    else:
        print(_table(by, rows))
    print(budget_line(state))
    return 0


_PERIOD_WORDS = {"day": "today (UTC)", "month": "this month (UTC)", "all": "at all"}


async def _read(path: Path, budget: float | None, period: str, by: str) -> tuple[list[UsageRow], BudgetState]:
    from orchestrator.ledger import Ledger

    if not path.exists():
        # Opening the file would create it, and `usage` only reads: an empty in-memory
        # ledger gives the budget state of a month with no calls.
        async with await Ledger.open(":memory:", monthly_budget=budget) as empty:
            return [], await empty.budget_state()
    async with await Ledger.open(path, monthly_budget=budget) as ledger:
        return await ledger.summary(period=period, by=by), await ledger.budget_state()


def budget_line(state: BudgetState) -> str:
    from orchestrator.ledger import format_usd

    if state.budget_usd is None:
        return f"No monthly budget set (AI_MONTHLY_BUDGET); {format_usd(state.spent_usd)} spent this month"
    return (
        f"Budget: {format_usd(state.spent_usd)} of {format_usd(state.budget_usd)} used this month "
        f"({state.fraction:.0%})"
    )


def _table(by: str, rows: list[UsageRow]) -> str:
    headers = (by, *_HEADERS)
    cells = [
        (
            r.key,
            str(r.calls),
            f"{r.input_tokens:,}",
            f"{r.output_tokens:,}",
            f"{r.cost_usd:.4f}",
            str(r.cache_hits),
            str(r.errors),
            f"{r.avg_latency_ms:,.0f}ms",
        )
        for r in rows
    ]
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(headers)]
    lines = []
    for line in (headers, *cells):
        # The key reads best left-aligned, the numbers right-aligned.
        parts = [line[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(line[1:], widths[1:], strict=True)]
        lines.append("  ".join(parts).rstrip())
    return "\n".join(lines)
