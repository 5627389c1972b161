"""The ledger on real SQLite files: schema, sums, budget, alerts, and no overspend under load."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import sys
from datetime import UTC, datetime
from pathlib import Path

import aiosqlite
import pytest

from orchestrator.errors import BudgetExceeded, InvalidInputError
from orchestrator.ledger import CallRecord, Ledger
from server.cli import usage

ROOT = Path(__file__).resolve().parent.parent


def at(year: int, month: int, day: int, hour: int = 12) -> float:
    return datetime(year, month, day, hour, tzinfo=UTC).timestamp()


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def call(clock: Clock | None = None, **fields: object) -> CallRecord:
    base: dict[str, object] = {"task": "chat", "provider": "openai", "model": "gpt-x"}
    if clock is not None:
        base["ts"] = clock.now
    return CallRecord.model_validate(base | fields)


async def query(path: Path, sql: str) -> list[tuple[object, ...]]:
    async with aiosqlite.connect(path) as db:
        return [tuple(r) for r in await db.execute_fetchall(sql)]


# --- schema --------------------------------------------------------------------------


async def test_migrations_applied_once_and_reopen_is_idempotent(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "dir" / "ledger.db"
    async with await Ledger.open(path) as ledger:
        await ledger.record(call())
    async with await Ledger.open(path) as ledger:
        assert len(await ledger.recent()) == 1
    assert [r[0] for r in await query(path, "SELECT id FROM migrations")] == [1]
    tables = {r[0] for r in await query(path, "SELECT name FROM sqlite_master WHERE type IN ('table', 'index')")}
    assert {"calls", "reservations", "alerts", "migrations", "calls_ts", "calls_model_ts"} <= tables


async def test_many_connections_opening_a_fresh_file_together(tmp_path: Path) -> None:
    # SQLite does not wait (busy handler) on the switch to WAL; the ledger must retry it.
    for attempt in range(5):
        path = tmp_path / str(attempt) / "ledger.db"
        ledgers = await asyncio.gather(*(Ledger.open(path) for _ in range(12)))
        for ledger in ledgers:
            await ledger.close()
        assert await query(path, "PRAGMA journal_mode") == [("wal",)]
        assert await query(path, "SELECT id FROM migrations") == [(1,)]


async def test_wal_mode_is_on(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    async with await Ledger.open(path):
        pass
    # journal_mode=WAL is a property of the file: a fresh connection sees it.
    assert await query(path, "PRAGMA journal_mode") == [("wal",)]


async def test_every_field_round_trips(tmp_path: Path) -> None:
    record = CallRecord(
        ts=at(2025, 3, 4),
        front_end="lsp",
        task="analyze",
        kind="security",
        profile="quality",
        provider="anthropic",
        model="anthropic/claude-x",
        input_tokens=1234,
        output_tokens=56,
        cost_usd=0.0123,
        latency_ms=812.5,
        ttft_ms=140.25,
        cache_hit=True,
        outcome="error:ProviderTimeout",
        reason="security → quality profile, cheapest of equal quality",
    )
    async with await Ledger.open(tmp_path / "ledger.db") as ledger:
        await ledger.record(record)
        await ledger.record(call(ts=at(2025, 3, 3)))
        recent = await ledger.recent()
    assert recent[0] == record
    assert len(recent) == 2


# --- sums ----------------------------------------------------------------------------


async def test_summary_by_day_month_all(tmp_path: Path) -> None:
    clock = Clock(at(2025, 2, 2, 13))
    calls = [
        call(ts=at(2025, 1, 31, 23), provider="openai", model="gpt-x", kind="style", cost_usd=1.0),
        call(ts=at(2025, 2, 1, 10), provider="anthropic", model="claude-x", kind="security", cost_usd=0.5),
        call(ts=at(2025, 2, 2, 9), provider="openai", model="gpt-y", kind="security", cost_usd=0.2, cache_hit=True),
        call(ts=at(2025, 2, 2, 12), provider="openai", model="gpt-x", outcome="error:RateLimitError", latency_ms=100),
    ]
    async with await Ledger.open(tmp_path / "ledger.db", clock=clock) as ledger:
        for c in calls:
            await ledger.record(c)

        day = await ledger.summary(period="day", by="provider")
        assert [(r.key, r.calls, r.cost_usd, r.cache_hits, r.errors) for r in day] == [("openai", 2, 0.2, 1, 1)]

        month = await ledger.summary(period="month", by="provider")
        assert [(r.key, r.calls) for r in month] == [("anthropic", 1), ("openai", 2)]

        everything = await ledger.summary(period="all", by="model")
        assert [(r.key, r.calls, r.cost_usd) for r in everything] == [
            ("gpt-x", 2, 1.0),
            ("claude-x", 1, 0.5),
            ("gpt-y", 1, 0.2),
        ]
        gpt_x = everything[0]
        assert gpt_x.input_tokens == 0 and gpt_x.avg_latency_ms == 50.0

        kinds = await ledger.summary(period="month", by="kind")
        assert [(r.key, r.calls) for r in kinds] == [("security", 2), ("(none)", 1)]

        assert await ledger.total_cost(period="day") == pytest.approx(0.2)
        assert await ledger.total_cost(period="month") == pytest.approx(0.7)
        assert await ledger.total_cost(period="all") == pytest.approx(1.7)
        assert [(r.key, r.calls) for r in await ledger.summary(by="task")] == [("chat", 3)]
        assert [(r.key, r.calls) for r in await ledger.summary(by="front_end")] == [("core", 3)]


async def test_bad_period_or_grouping_names_the_valid_ones(tmp_path: Path) -> None:
    async with await Ledger.open(tmp_path / "ledger.db") as ledger:
        with pytest.raises(InvalidInputError, match="day, month, all"):
            await ledger.summary(period="week")
        with pytest.raises(InvalidInputError, match="provider, model, kind, task, front_end"):
            await ledger.summary(by="user")
        with pytest.raises(InvalidInputError, match="day, month, all"):
            await ledger.total_cost(period="year")


async def test_observed_latency_is_median_of_recent_real_successes(tmp_path: Path) -> None:
    async with await Ledger.open(tmp_path / "ledger.db") as ledger:
        for i, ms in enumerate((100, 200, 300, 400)):
            await ledger.record(call(ts=1000.0 + i, latency_ms=ms))
        assert await ledger.observed_latency("gpt-x") is None  # four is too few
        # Neither cache hits, failures nor other models count.
        await ledger.record(call(ts=1010.0, latency_ms=1, cache_hit=True))
        await ledger.record(call(ts=1011.0, latency_ms=9000, outcome="error:ProviderTimeout"))
        await ledger.record(call(ts=1012.0, latency_ms=9000, model="other"))
        assert await ledger.observed_latency("gpt-x") is None
        await ledger.record(call(ts=1020.0, latency_ms=1000))
        assert await ledger.observed_latency("gpt-x") == 300
        # Only the newest `window` calls.
        assert await ledger.observed_latency("gpt-x", window=2) is None
        for i in range(5):
            await ledger.record(call(ts=2000.0 + i, latency_ms=50))
        assert await ledger.observed_latency("gpt-x", window=5) == 50


# --- budget --------------------------------------------------------------------------


async def test_alerts_fire_once_per_level_per_month(tmp_path: Path) -> None:
    clock = Clock(at(2025, 5, 10))
    path = tmp_path / "ledger.db"
    async with (
        await Ledger.open(path, monthly_budget=10.0, clock=clock) as one,
        await Ledger.open(path, monthly_budget=10.0, clock=clock) as two,
    ):
        assert await one.record(call(clock, cost_usd=4.0)) == []
        first = await one.record(call(clock, cost_usd=1.0))
        assert [a.level for a in first] == [50]
        assert first[0].message == "50% of the monthly budget used: $5.00 of $10.00"
        assert first[0].period == "2025-05" and first[0].spent_usd == 5.0 and first[0].budget_usd == 10.0
        # The other connection (as another process would) does not fire 50 again.
        assert await two.record(call(clock, cost_usd=0.5)) == []
        eighty = await two.record(call(clock, cost_usd=2.53))
        assert [a.message for a in eighty] == ["80% of the monthly budget used: $8.03 of $10.00"]
        assert await one.record(call(clock, cost_usd=0.1)) == []
        # One call can cross two levels at once.
        jump = await one.record(call(clock, cost_usd=2.0))
        assert [a.level for a in jump] == [95, 100]
        assert "blocked" in jump[1].message and "AI_MONTHLY_BUDGET" in jump[1].message
        assert await two.record(call(clock, cost_usd=0.0)) == []
        state = await one.budget_state()
        assert state.alert_level == 100 and state.period == "2025-05"

        clock.now = at(2025, 6, 1, 0)
        assert (await one.budget_state()).spent_usd == 0
        assert [a.level for a in await two.record(call(clock, cost_usd=6.0))] == [50]
        assert [a.period for a in await one.record(call(clock, cost_usd=4.0))] == ["2025-06"] * 3

    assert await query(path, "SELECT period, COUNT(*) FROM alerts GROUP BY period") == [
        ("2025-05", 4),
        ("2025-06", 4),
    ]


async def test_no_alerts_without_a_budget(tmp_path: Path) -> None:
    async with await Ledger.open(tmp_path / "ledger.db") as ledger:
        reservation = await ledger.reserve(5.0)
        assert reservation.amount_usd == 5.0
        assert await ledger.settle(reservation, call(cost_usd=1000.0)) == []
        state = await ledger.budget_state()
        assert state.budget_usd is None and state.remaining_usd is None
        assert state.spent_usd == 1000.0 and state.fraction == 0.0 and state.alert_level == 0


async def test_budget_exceeded_at_100_percent_says_what_to_do(tmp_path: Path) -> None:
    clock = Clock(at(2025, 7, 15))
    async with await Ledger.open(tmp_path / "ledger.db", monthly_budget=10.0, clock=clock) as ledger:
        await ledger.record(call(clock, cost_usd=9.99))
        held = await ledger.reserve(0.005)
        with pytest.raises(BudgetExceeded) as info:
            await ledger.reserve(0.02)
        message = str(info.value)
        assert "$9.99 spent" in message and "$0.0050 reserved" in message and "$10.00" in message
        assert "resets on the 1st" in message and "AI_MONTHLY_BUDGET" in message and "[budget]" in message
        assert info.value.spent == pytest.approx(9.99) and info.value.budget == 10.0
        # Free calls (local models) still go through; a raised budget takes effect at once.
        await ledger.reserve(0.0)
        ledger.monthly_budget = 20.0
        await ledger.release(await ledger.reserve(0.02))
        state = await ledger.budget_state()
        assert state.reserved_usd == pytest.approx(0.005)
        assert state.remaining_usd == pytest.approx(20.0 - 9.99 - 0.005)
        assert state.fraction == pytest.approx(0.4995) and state.alert_level == 0
        await ledger.settle(held, call(clock, cost_usd=0.004))
        assert (await ledger.budget_state()).reserved_usd == 0
        with pytest.raises(InvalidInputError):
            ledger.monthly_budget = -1
        with pytest.raises(InvalidInputError):
            await ledger.reserve(-0.01)


async def test_release_frees_the_reservation(tmp_path: Path) -> None:
    async with await Ledger.open(tmp_path / "ledger.db", monthly_budget=1.0) as ledger:
        held = await ledger.reserve(0.6)
        with pytest.raises(BudgetExceeded):
            await ledger.reserve(0.6)
        await ledger.release(held)
        await ledger.reserve(0.6)
        assert await ledger.recent() == []  # a release writes no call row


async def test_stale_reservations_expire(tmp_path: Path) -> None:
    clock = Clock(at(2025, 8, 1))
    path = tmp_path / "ledger.db"
    async with await Ledger.open(path, monthly_budget=1.0, clock=clock, reservation_ttl=600) as ledger:
        await ledger.reserve(0.9)  # its process "crashes": never settled nor released
        with pytest.raises(BudgetExceeded):
            await ledger.reserve(0.2)
        clock.now += 599
        with pytest.raises(BudgetExceeded):
            await ledger.reserve(0.2)
        clock.now += 2
        assert (await ledger.budget_state()).reserved_usd == 0
        fresh = await ledger.reserve(0.2)
    # The stale row is purged, not just ignored.
    assert await query(path, "SELECT id FROM reservations") == [(fresh.id,)]


async def test_cancelled_caller_leaves_the_ledger_usable(tmp_path: Path) -> None:
    async with await Ledger.open(tmp_path / "ledger.db", monthly_budget=1.0) as ledger:
        task = asyncio.create_task(ledger.settle(None, call(cost_usd=0.1)))
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        # The transaction finished on its own (shielded) and no BEGIN was left open.
        await ledger.reserve(0.5)
        assert await ledger.total_cost() == pytest.approx(0.1)


# --- concurrency ---------------------------------------------------------------------

BUDGET = 1.0
MAX_COST = 0.02
REAL_COST = 0.015


async def spend(ledger: Ledger) -> bool:
    try:
        reservation = await ledger.reserve(MAX_COST)
    except BudgetExceeded:
        return False
    await asyncio.sleep(0)  # the provider call
    await ledger.settle(reservation, call(cost_usd=REAL_COST))
    return True


async def test_concurrent_calls_never_overspend(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    ledgers = [await Ledger.open(path, monthly_budget=BUDGET) for _ in range(4)]
    try:
        results = await asyncio.gather(*(spend(ledgers[i % 4]) for i in range(200)))
        total = await ledgers[0].total_cost()
    finally:
        for ledger in ledgers:
            await ledger.close()
    succeeded = sum(results)
    assert total <= BUDGET
    assert succeeded < 200
    assert succeeded >= BUDGET / MAX_COST - 1
    assert await query(path, "SELECT COUNT(*) FROM reservations") == [(0,)]


WORKER = """
import asyncio, sys
from tests.test_ledger import BUDGET, Ledger, spend

print("ready", flush=True)
sys.stdin.readline()  # imports done: wait to start together with the other workers

async def main(path):
    async with await Ledger.open(path, monthly_budget=BUDGET) as ledger:
        results = await asyncio.gather(*(spend(ledger) for _ in range(50)))
    print(sum(results))

asyncio.run(main(sys.argv[1]))
"""


async def test_concurrent_processes_never_overspend(tmp_path: Path) -> None:
    path = tmp_path / "fresh" / "ledger.db"  # the processes race to create and migrate it too
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            WORKER,
            str(path),
            env=env,
            cwd=ROOT,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        for _ in range(4)
    ]
    for proc in procs:
        assert proc.stdout is not None
        assert await asyncio.wait_for(proc.stdout.readline(), 60) == b"ready\n"
    outputs = await asyncio.wait_for(asyncio.gather(*(p.communicate(b"go\n") for p in procs)), 120)
    for proc, (_out, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, err.decode()
    succeeded = sum(int(out) for out, _err in outputs)
    [(total, rows)] = await query(path, "SELECT TOTAL(cost_usd), COUNT(*) FROM calls")
    assert rows == succeeded
    assert isinstance(total, float) and total <= BUDGET
    assert BUDGET / MAX_COST - 1 <= succeeded < 200
    assert await query(path, "SELECT id FROM migrations") == [(1,)]


# --- orchestrator usage --------------------------------------------------------------


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in list(os.environ):
        if name.startswith("AI_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("ORCHESTRATOR_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.chdir(tmp_path)
    return tmp_path / "data"


def fill(path: Path, *records: CallRecord) -> None:
    async def write() -> None:
        async with await Ledger.open(path) as ledger:
            for record in records:
                await ledger.record(record)

    asyncio.run(write())


def args(**kw: object) -> argparse.Namespace:
    return argparse.Namespace(**({"period": "month", "by": "provider", "json": False} | kw))


def test_usage_without_a_ledger_does_not_create_one(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert usage.run(args()) == 0
    assert (
        capsys.readouterr().out
        == "no calls recorded yet\nNo monthly budget set (AI_MONTHLY_BUDGET); $0.00 spent this month\n"
    )
    assert not data_dir.exists()


def test_usage_table_and_budget_line(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AI_MONTHLY_BUDGET", "10")
    fill(
        data_dir / "ledger.db",
        call(
            provider="anthropic", model="claude-x", cost_usd=3.0, input_tokens=12000, output_tokens=800, latency_ms=900
        ),
        call(cost_usd=0.2, latency_ms=300, cache_hit=True),
        call(outcome="error:ProviderTimeout", latency_ms=100),
    )
    assert usage.run(args()) == 0
    lines = capsys.readouterr().out.splitlines()
    header = ["provider", "calls", "tokens in", "tokens out", "cost $", "cache hits", "errors", "avg latency"]
    assert re.split(r"\s{2,}", lines[0]) == header
    assert lines[1].split() == ["anthropic", "1", "12,000", "800", "3.0000", "0", "0", "900ms"]
    assert lines[2].split() == ["openai", "2", "0", "0", "0.2000", "1", "1", "200ms"]
    assert lines[3] == "Budget: $3.20 of $10.00 used this month (32%)"

    assert usage.run(args(period="day", by="model", json=True)) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["period"] == "day" and data["by"] == "model"
    assert [(r["key"], r["calls"]) for r in data["rows"]] == [("claude-x", 1), ("gpt-x", 2)]
    assert data["budget"]["budget_usd"] == 10.0 and data["budget"]["spent_usd"] == pytest.approx(3.2)


def test_usage_parser_defaults_and_choices() -> None:
    parser = argparse.ArgumentParser()
    usage.add_parser(parser.add_subparsers(dest="command"))
    parsed = parser.parse_args(["usage"])
    assert (parsed.period, parsed.by, parsed.json, parsed.handler) == ("month", "provider", False, usage.run)
    with pytest.raises(SystemExit):
        parser.parse_args(["usage", "--period", "week"])
