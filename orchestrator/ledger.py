"""The ledger: the single place where spend is added up.

One row per provider call in SQLite (WAL, so readers never wait for the writer), a monthly
budget checked *before* a call by reserving its worst-case cost, and alerts at 50/80/95/100 %
that fire once per calendar month (UTC) per database, however many processes share it.

Why reservations: checking "spent < budget" and then calling lets N concurrent calls all
pass the check and overspend together. `reserve` instead counts in-flight worst cases, inside
`BEGIN IMMEDIATE` (one writer at a time across every process on the file), and `settle`
swaps the reservation for the real cost in one transaction.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Self, TypeVar

import aiosqlite
from pydantic import BaseModel, ConfigDict, Field

from .errors import BudgetExceeded, InvalidInputError

__all__ = ["BudgetAlert", "BudgetState", "CallRecord", "Ledger", "Reservation", "UsageRow", "format_usd"]

ALERT_LEVELS = (50, 80, 95, 100)
PERIODS = ("day", "month", "all")
GROUPS = ("provider", "model", "kind", "task", "front_end")
# Sums of float costs drift by ~1e-16 per term; without slack 50 × $0.02 would not fit in $1.00.
_EPSILON = 1e-9
_T = TypeVar("_T")
_log = logging.getLogger(__name__)
FLUSH_DELAY_S = 0.05
FLUSH_BATCH = 200


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class CallRecord(_Frozen):
    ts: float = Field(default_factory=time.time)  # epoch seconds
    front_end: str = "core"
    task: str
    kind: str | None = None
    profile: str | None = None
    provider: str
    model: str
    input_tokens: int = Field(default=0, ge=0)
    output_tokens: int = Field(default=0, ge=0)
    cost_usd: float = Field(default=0.0, ge=0)
    latency_ms: float = Field(default=0.0, ge=0)
    ttft_ms: float | None = None
    cache_hit: bool = False
    outcome: str = "ok"  # "ok", "incomplete", "stale" or "error:<ErrorClassName>"
    reason: str = ""  # why routing picked this model


class BudgetAlert(_Frozen):
    level: int
    spent_usd: float
    budget_usd: float
    period: str
    message: str


class BudgetState(_Frozen):
    period: str
    budget_usd: float | None
    spent_usd: float
    reserved_usd: float
    remaining_usd: float | None  # what can still be reserved: budget - spent - reserved, never below 0
    fraction: float
    alert_level: int


class Reservation(_Frozen):
    id: str
    amount_usd: float


class UsageRow(_Frozen):
    key: str
    calls: int
    input_tokens: int
    output_tokens: int
    cost_usd: float
    cache_hits: int
    errors: int
    avg_latency_ms: float


_COLUMNS = tuple(CallRecord.model_fields)

# Numbered by position; never edit a shipped one, append a new one.
_MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        """CREATE TABLE calls (
            id INTEGER PRIMARY KEY,
            ts REAL NOT NULL, front_end TEXT NOT NULL, task TEXT NOT NULL, kind TEXT, profile TEXT,
            provider TEXT NOT NULL, model TEXT NOT NULL,
            input_tokens INTEGER NOT NULL, output_tokens INTEGER NOT NULL, cost_usd REAL NOT NULL,
            latency_ms REAL NOT NULL, ttft_ms REAL, cache_hit INTEGER NOT NULL,
            outcome TEXT NOT NULL, reason TEXT NOT NULL)""",
        "CREATE INDEX calls_ts ON calls (ts)",
        "CREATE INDEX calls_model_ts ON calls (model, ts)",
        "CREATE TABLE reservations (id TEXT PRIMARY KEY, amount_usd REAL NOT NULL, created REAL NOT NULL)",
        "CREATE TABLE alerts (period TEXT NOT NULL, level INTEGER NOT NULL, ts REAL NOT NULL, PRIMARY KEY (period, level))",
    ),
)

# The `by` column comes from this map, never from the caller, so the SQL built from it is fixed.
# Columns in UsageRow's field order.
_SUMMARY_SQL = {
    by: f"""SELECT COALESCE({by}, '(none)') AS key, COUNT(*), SUM(input_tokens), SUM(output_tokens),
                   SUM(cost_usd), SUM(cache_hit), SUM(outcome LIKE 'error:%'), AVG(latency_ms)
            FROM calls WHERE ts >= ? AND ts < ?
            GROUP BY key ORDER BY 5 DESC, 2 DESC, key"""
    for by in GROUPS
}


def format_usd(value: float) -> str:
    """Dollars with cents, or four decimals for the sub-dime sums one cheap call costs."""
    return f"${value:,.2f}" if value == 0 or abs(value) >= 0.1 else f"${value:.4f}"


def _month(now: float) -> tuple[str, float, float]:
    """("YYYY-MM", start, end) of the UTC calendar month holding `now`."""
    day = datetime.fromtimestamp(now, UTC)
    start = datetime(day.year, day.month, 1, tzinfo=UTC)
    end = datetime(day.year + day.month // 12, day.month % 12 + 1, 1, tzinfo=UTC)
    return start.strftime("%Y-%m"), start.timestamp(), end.timestamp()


def _bounds(period: str, now: float) -> tuple[float, float]:
    if period == "month":
        return _month(now)[1:]
    if period == "day":
        day = datetime.fromtimestamp(now, UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        return day.timestamp(), (day + timedelta(days=1)).timestamp()
    if period == "all":
        return float("-inf"), float("inf")
    raise InvalidInputError(f"unknown period {period!r}; valid periods: {', '.join(PERIODS)}")


def _fraction(spent: float, budget: float) -> float:
    if budget > 0:
        return spent / budget
    return 1.0 if spent > 0 else 0.0


class DayRow(BaseModel):
    model_config = ConfigDict(frozen=True)

    date: str
    calls: int
    cost_usd: float
    tokens: int
    cache_hits: int


class Ledger:
    """One SQLite connection (aiosqlite's thread) per object; safe to share within a process."""

    def __init__(
        self, db: aiosqlite.Connection, *, monthly_budget: float | None, clock: Callable[[], float], ttl: float
    ) -> None:
        self._db = db
        self._clock = clock
        self._ttl = ttl
        self._budget: float | None = None
        self.monthly_budget = monthly_budget
        # A transaction spans several awaits on one connection; coroutines sharing this
        # object must not interleave their statements inside it.
        self._lock = asyncio.Lock()
        # Without a budget nothing has to be decided before a call, so its row need not be
        # written on the call's path: rows queue here and a background task writes them in
        # batches (and every read or close writes them first).
        self._pending: list[list[Any]] = []
        self._flusher: asyncio.Task[None] | None = None

    @classmethod
    async def open(
        cls,
        path: str | Path,
        *,
        monthly_budget: float | None = None,
        clock: Callable[[], float] = time.time,
        reservation_ttl: float = 600.0,
    ) -> Ledger:
        if str(path) != ":memory:":
            await asyncio.to_thread(Path(path).parent.mkdir, parents=True, exist_ok=True)
        # isolation_level=None: we issue BEGIN IMMEDIATE ourselves instead of sqlite3's deferred BEGIN.
        db = await aiosqlite.connect(str(path), timeout=10.0, isolation_level=None)
        try:
            db.row_factory = aiosqlite.Row
            await db.execute("PRAGMA busy_timeout = 10000")
            if str(path) != ":memory:":
                await _enable_wal(db)
            await db.execute("PRAGMA synchronous = NORMAL")
            await _migrate(db)
        except BaseException:
            await db.close()
            raise
        return cls(db, monthly_budget=monthly_budget, clock=clock, ttl=reservation_ttl)

    async def close(self) -> None:
        if self._flusher is not None and not self._flusher.done():
            self._flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._flusher
        await self.flush()
        async with self._lock:  # let a running transaction finish first
            await self._db.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.close()

    @property
    def monthly_budget(self) -> float | None:
        return self._budget

    @monthly_budget.setter
    def monthly_budget(self, value: float | None) -> None:
        if value is not None and value < 0:
            raise InvalidInputError(f"monthly budget must be 0 or more, got {value}")
        self._budget = value

    # --- writes ------------------------------------------------------------------------

    async def reserve(self, amount_usd: float) -> Reservation:
        """Hold `amount_usd` (the call's worst-case cost) against this month's budget."""
        if amount_usd < 0:
            raise InvalidInputError(f"a reservation cannot be negative, got {amount_usd}")
        budget = self.monthly_budget
        if budget is None:
            return Reservation(id="", amount_usd=amount_usd)  # nothing to hold: no row, no trip
        reservation = Reservation(id=uuid.uuid4().hex, amount_usd=amount_usd)

        async def body() -> None:
            now = self._clock()
            # A process that crashed between reserve and settle must not hold the budget forever.
            await self._db.execute("DELETE FROM reservations WHERE created <= ?", (now - self._ttl,))
            # A free call (a local model) never needs budget, even once it is used up.
            if budget is not None and amount_usd > 0:
                period, start, end = _month(now)
                spent = await self._spent(start, end)
                reserved = await self._reserved(now)
                if spent + reserved + amount_usd > budget + _EPSILON:
                    raise BudgetExceeded(
                        f"monthly budget reached for {period}: {format_usd(spent)} spent and "
                        f"{format_usd(reserved)} reserved by calls in flight of {format_usd(budget)}; this call "
                        f"may cost up to {format_usd(amount_usd)}. The budget resets on the 1st (UTC); to raise "
                        "it set AI_MONTHLY_BUDGET or monthly_usd under [budget] in the config file.",
                        spent=spent,
                        budget=budget,
                    )
            await self._db.execute(
                "INSERT INTO reservations (id, amount_usd, created) VALUES (?, ?, ?)",
                (reservation.id, amount_usd, now),
            )

        await self._write(body)
        return reservation

    async def settle(self, reservation: Reservation | None, record: CallRecord) -> list[BudgetAlert]:
        """Swap the reservation for the call's real cost; return the alert levels crossed by it."""
        budget = self.monthly_budget
        if budget is None:
            values = record.model_dump()
            self._pending.append([values[c] for c in _COLUMNS])
            if reservation is not None and reservation.id:  # reserved while a budget was set
                await self.release(reservation)
            if self._flusher is None or self._flusher.done():
                self._flusher = asyncio.get_running_loop().create_task(self._flush_in_background())
            return []

        async def body() -> list[BudgetAlert]:
            if reservation is not None and reservation.id:
                await self._db.execute("DELETE FROM reservations WHERE id = ?", (reservation.id,))
            values = record.model_dump()
            await self._db.execute(
                f"INSERT INTO calls ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' * len(_COLUMNS))})",
                [values[c] for c in _COLUMNS],
            )
            if budget is None:
                return []
            period, start, end = _month(self._clock())
            spent = await self._spent(start, end)
            fraction = _fraction(spent, budget)
            alerts = []
            for level in ALERT_LEVELS:
                if fraction + _EPSILON < level / 100:
                    break
                # The primary key makes the first process to get here the only one to fire it.
                async with self._db.execute(
                    "INSERT OR IGNORE INTO alerts (period, level, ts) VALUES (?, ?, ?)",
                    (period, level, self._clock()),
                ) as cursor:
                    fired = cursor.rowcount == 1
                if fired:
                    alerts.append(_alert(level, spent, budget, period))
            return alerts

        return await self._write(body)

    async def record(self, record: CallRecord) -> list[BudgetAlert]:
        return await self.settle(None, record)

    async def release(self, reservation: Reservation) -> None:
        """Drop a reservation whose call never happened."""
        if not reservation.id:
            return

        async def body() -> None:
            await self._db.execute("DELETE FROM reservations WHERE id = ?", (reservation.id,))

        await self._write(body)

    async def _flush_in_background(self) -> None:
        # Gather a batch first: one transaction per call would put SQLite back on the call's
        # path at high concurrency. A crash can lose at most this much of the log.
        if len(self._pending) < FLUSH_BATCH:
            await asyncio.sleep(FLUSH_DELAY_S)
        try:
            await self.flush()
        except Exception:  # noqa: BLE001 - flush logged it and kept the rows for the next try
            return

    async def flush(self) -> None:
        """Write the queued call rows, in one transaction per batch."""
        while self._pending:
            batch, self._pending = self._pending, []

            async def body(rows: list[list[Any]] = batch) -> None:
                await self._db.executemany(
                    f"INSERT INTO calls ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' * len(_COLUMNS))})", rows
                )

            try:
                await self._write(body)
            except BaseException:
                # Not lost: back in the queue for the next flush (or close) to write.
                self._pending[:0] = batch
                _log.exception("could not write %d ledger rows; will retry", len(batch))
                raise

    # --- reads -------------------------------------------------------------------------

    async def budget_state(self) -> BudgetState:
        budget = self.monthly_budget
        now = self._clock()
        period, start, end = _month(now)
        await self.flush()
        async with self._lock:
            spent = await self._spent(start, end)
            reserved = await self._reserved(now)
        fraction = 0.0 if budget is None else _fraction(spent, budget)
        return BudgetState(
            period=period,
            budget_usd=budget,
            spent_usd=spent,
            reserved_usd=reserved,
            remaining_usd=None if budget is None else max(budget - spent - reserved, 0.0),
            fraction=fraction,
            alert_level=max((lvl for lvl in ALERT_LEVELS if fraction + _EPSILON >= lvl / 100), default=0),
        )

    async def summary(self, *, period: str = "month", by: str = "provider") -> list[UsageRow]:
        """Totals per `by` value over `period`, most expensive first."""
        if by not in GROUPS:
            raise InvalidInputError(f"unknown grouping {by!r}; valid groupings: {', '.join(GROUPS)}")
        start, end = _bounds(period, self._clock())
        rows = await self._fetch(_SUMMARY_SQL[by], (start, end))
        fields = tuple(UsageRow.model_fields)
        return [UsageRow.model_validate(dict(zip(fields, (str(r[0]), *r[1:]), strict=True))) for r in rows]

    async def total_cost(self, *, period: str = "month") -> float:
        start, end = _bounds(period, self._clock())
        await self.flush()
        async with self._lock:
            return await self._spent(start, end)

    async def recent(self, limit: int = 50) -> list[CallRecord]:
        """The last `limit` calls, newest first."""
        rows = await self._fetch(
            f"SELECT {', '.join(_COLUMNS)} FROM calls ORDER BY ts DESC, id DESC LIMIT ?",
            (limit,),
        )
        return [CallRecord.model_validate(dict(row)) for row in rows]

    async def daily(self, days: int) -> list[DayRow]:
        """Calls, spend, tokens and cache hits per UTC day for the last `days` days, today
        last, days without calls included."""
        today = self._clock() // 86400 * 86400
        first = today - (max(days, 1) - 1) * 86400
        rows = await self._fetch(
            "SELECT CAST((ts - ?) / 86400 AS INTEGER) AS day, COUNT(*), TOTAL(cost_usd), "
            "TOTAL(input_tokens + output_tokens), TOTAL(cache_hit) FROM calls WHERE ts >= ? GROUP BY day",
            (first, first),
        )
        found = {int(r[0]): r for r in rows}
        out = []
        for offset in range(max(days, 1)):
            row = found.get(offset)
            day = datetime.fromtimestamp(first + offset * 86400, UTC).date().isoformat()
            out.append(
                DayRow(
                    date=day,
                    calls=int(row[1]) if row else 0,
                    cost_usd=float(row[2]) if row else 0.0,
                    tokens=int(row[3]) if row else 0,
                    cache_hits=int(row[4]) if row else 0,
                )
            )
        return out

    async def observed_latency(self, model: str, *, window: int = 50) -> float | None:
        """Median latency of the model's last `window` real successful calls; None below 5.

        Cache hits and failures say nothing about how fast the model answers.
        """
        rows = await self._fetch(
            "SELECT latency_ms FROM calls WHERE model = ? AND outcome = 'ok' AND cache_hit = 0 "
            "ORDER BY ts DESC LIMIT ?",
            (model, window),
        )
        if len(rows) < 5:
            return None
        return float(statistics.median(r[0] for r in rows))

    # --- internals ---------------------------------------------------------------------

    async def _write(self, body: Callable[[], Awaitable[_T]]) -> _T:
        # Shielded: a caller cancelled mid-transaction must not leave the connection inside
        # BEGIN IMMEDIATE (holding the write lock of every process); the transaction ends
        # with COMMIT or ROLLBACK whatever happens to the caller.
        return await asyncio.shield(self._transaction(body))

    async def _transaction(self, body: Callable[[], Awaitable[_T]]) -> _T:
        async with self._lock:
            await self._db.execute("BEGIN IMMEDIATE")
            try:
                result = await body()
            except BaseException:
                await self._db.execute("ROLLBACK")
                raise
            await self._db.execute("COMMIT")
            return result

    async def _fetch(self, sql: str, params: tuple[Any, ...]) -> list[aiosqlite.Row]:
        await self.flush()
        async with self._lock:
            return list(await self._db.execute_fetchall(sql, params))

    async def _spent(self, start: float, end: float) -> float:
        async with self._db.execute("SELECT TOTAL(cost_usd) FROM calls WHERE ts >= ? AND ts < ?", (start, end)) as c:
            row = await c.fetchone()
        return float(row[0]) if row else 0.0

    async def _reserved(self, now: float) -> float:
        async with self._db.execute(
            "SELECT TOTAL(amount_usd) FROM reservations WHERE created > ?", (now - self._ttl,)
        ) as cursor:
            row = await cursor.fetchone()
        return float(row[0]) if row else 0.0


def _alert(level: int, spent: float, budget: float, period: str) -> BudgetAlert:
    message = f"{level}% of the monthly budget used: {format_usd(spent)} of {format_usd(budget)}"
    if level >= 100:
        message += (
            "; paid calls are blocked until the budget resets on the 1st (UTC) "
            "(raise it with AI_MONTHLY_BUDGET or [budget] monthly_usd)"
        )
    return BudgetAlert(level=level, spent_usd=spent, budget_usd=budget, period=period, message=message)


async def _enable_wal(db: aiosqlite.Connection) -> None:
    """Switch the file to WAL, waiting for other processes doing the same.

    SQLite does not run the busy handler for this pragma: two processes opening a fresh
    file together can get "database is locked" (or the old mode back) at once, so retry.
    WAL is a property of the file; once any process converted it there is nothing to do.
    """
    deadline = time.monotonic() + 10.0
    delay = 0.005
    while True:
        try:
            async with db.execute("PRAGMA journal_mode") as cursor:
                row = await cursor.fetchone()
            if row and str(row[0]).lower() == "wal":
                return
            async with db.execute("PRAGMA journal_mode = WAL") as cursor:
                row = await cursor.fetchone()
            if row and str(row[0]).lower() == "wal":
                return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
        if time.monotonic() > deadline:
            # Still correct without WAL (BEGIN IMMEDIATE serializes writers); readers just wait more.
            _log.warning("could not switch the ledger to WAL mode; continuing in %s mode", row[0] if row else "?")
            return
        await asyncio.sleep(delay)
        delay = min(delay * 2, 0.1)


async def _migrate(db: aiosqlite.Connection) -> None:
    """Apply the migrations this file lacks, in order, as one writer: a second process
    opening the same fresh file waits on BEGIN IMMEDIATE, then finds nothing left to do."""
    await db.execute("BEGIN IMMEDIATE")
    try:
        await db.execute("CREATE TABLE IF NOT EXISTS migrations (id INTEGER PRIMARY KEY, applied REAL NOT NULL)")
        async with db.execute("SELECT COALESCE(MAX(id), 0) FROM migrations") as cursor:
            row = await cursor.fetchone()
        done = int(row[0]) if row else 0
        for number, statements in enumerate(_MIGRATIONS, start=1):
            if number <= done:
                continue
            for statement in statements:
                await db.execute(statement)
            await db.execute("INSERT INTO migrations (id, applied) VALUES (?, ?)", (number, time.time()))
    except BaseException:
        with contextlib.suppress(Exception):  # the original error is the one worth raising
            await db.execute("ROLLBACK")
        raise
    await db.execute("COMMIT")
