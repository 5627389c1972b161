"""The response cache: answers to identical requests, kept in SQLite (aiosqlite).

One file may be shared by several `ResponseCache` objects and processes: WAL mode lets
readers run beside the single writer, and every multi-statement change (put + evict,
clear, migrations) runs in one `BEGIN IMMEDIATE` transaction.

Entries expire `ttl_seconds` after they were stored, but an expired entry is kept: when
every provider is down, the facade may still serve it with `allow_stale=True`. Entries
leave only by eviction: least recently used beyond `max_entries`, or older than 7 x TTL.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import sqlite3
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from types import TracebackType
from typing import Self

import aiosqlite
from pydantic import BaseModel, ConfigDict, ValidationError

from .errors import ConfigError, OrchestratorError
from .types import Request, Response

SCHEMA_VERSION = 1
KEY_VERSION = 1  # bump when the key's canonical form changes: old entries then simply miss
STALE_FACTOR = 7  # expired entries are still worth keeping this many TTLs, as a last resort
BUSY_TIMEOUT_S = 5.0

# Index i upgrades the schema from version i to i + 1; the `meta` table records where a file is.
# The trigger: evicted rows take their hit counts with them; keep the total so stats stay cumulative.
_MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL)",
        "INSERT INTO meta (key, value) VALUES ('schema_version', 0), ('evicted_hits', 0)",
        """CREATE TABLE responses (key TEXT PRIMARY KEY, response TEXT NOT NULL, created_at REAL NOT NULL,
            last_used REAL NOT NULL, hits INTEGER NOT NULL DEFAULT 0)""",
        "CREATE INDEX responses_last_used ON responses (last_used)",
        """CREATE TRIGGER responses_keep_hits AFTER DELETE ON responses
            BEGIN UPDATE meta SET value = value + OLD.hits WHERE key = 'evicted_hits'; END""",
    ),
)

# One statement per hit: touching (LRU + hit count) only when fresh, and returning the row,
# costs a single trip to the connection thread. Expired rows are returned untouched.
_GET = """
UPDATE responses
SET last_used = CASE WHEN created_at > :cutoff THEN :now ELSE last_used END,
    hits = hits + (created_at > :cutoff)
WHERE key = :key
RETURNING response, created_at
"""
_PUT = """
INSERT INTO responses (key, response, created_at, last_used) VALUES (?, ?, ?, ?)
ON CONFLICT (key) DO UPDATE SET
    response = excluded.response, created_at = excluded.created_at, last_used = excluded.last_used
"""
_EVICT_LRU = """
DELETE FROM responses WHERE rowid IN (
    SELECT rowid FROM responses ORDER BY last_used, rowid
    LIMIT max(0, (SELECT count(*) FROM responses) - ?)
)
"""
_STATS = """
SELECT count(*), coalesce(sum(hits), 0), coalesce(sum(length(CAST(response AS BLOB))), 0),
       (SELECT value FROM meta WHERE key = 'evicted_hits')
FROM responses
"""


class CacheError(OrchestratorError):
    """The cache file failed while in use; callers may carry on without the cache."""


class CachedResponse(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    response: Response  # as stored: usage is what the provider originally reported
    created_at: float
    stale: bool  # past its TTL; only ever returned with allow_stale=True


class ResponseCache:
    """Use `await ResponseCache.open(path)`; the constructor does no I/O."""

    def __init__(
        self, conn: aiosqlite.Connection | None, path: str, *, ttl: float, max_entries: int, clock: Callable[[], float]
    ) -> None:
        self._conn = conn  # None when the cache is off: nothing is ever read or written
        self._path = path
        self._ttl = ttl
        self._max_entries = max_entries
        self._clock = clock
        # One connection carries one transaction at a time; concurrent puts on it must take turns.
        self._write_lock = asyncio.Lock()

    @classmethod
    async def open(
        cls,
        path: str | Path,
        *,
        ttl_seconds: float = 3600,
        max_entries: int = 1000,
        clock: Callable[[], float] = time.time,
    ) -> ResponseCache:
        name = str(path)
        if ttl_seconds < 0 or max_entries < 0:
            raise ConfigError("cache ttl_seconds and max_entries must be >= 0 (0 turns the cache off)", file=name)
        if ttl_seconds == 0 or max_entries == 0:
            return cls(None, name, ttl=0, max_entries=0, clock=clock)  # off: do not even create the file
        if name != ":memory:":
            try:
                await asyncio.to_thread(Path(name).parent.mkdir, parents=True, exist_ok=True)
            except OSError as exc:
                raise ConfigError(f"cannot create the cache directory: {exc}", file=name) from exc
        # isolation_level=None: we open transactions ourselves, so a get is one autocommit statement.
        conn = aiosqlite.connect(name, timeout=BUSY_TIMEOUT_S, isolation_level=None)
        try:
            await conn
            # Per-connection settings, set once here and never again per call.
            await conn.execute_fetchall("PRAGMA journal_mode=WAL")
            await conn.execute_fetchall("PRAGMA synchronous=NORMAL")
            await _migrate(conn, name)
        except BaseException as exc:
            await conn.close()  # even on cancellation: a dangling connection thread would leak
            if isinstance(exc, sqlite3.Error):
                msg = f"cannot use as a response cache (not an SQLite database?): {exc}"
                raise ConfigError(msg, file=name) from exc
            raise
        return cls(conn, name, ttl=ttl_seconds, max_entries=max_entries, clock=clock)

    async def close(self) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None
            await conn.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    @staticmethod
    def key(request: Request, *, provider: str = "") -> str:
        """A stable hash of everything that shapes the answer.

        Text is hashed exactly (whitespace matters in code); JSON with sorted keys, fixed
        separators and ASCII escapes makes the bytes independent of how the Request was built.
        """
        canonical = {
            "v": KEY_VERSION,
            "provider": provider,
            "model": request.model,
            "system": request.system,
            "messages": [[m.role, m.content] for m in request.messages],
            "max_tokens": request.max_tokens,
            # float() so that 1 and 1.0 hash alike; None (provider default) stays distinct from 0.0.
            "temperature": None if request.temperature is None else float(request.temperature),
            "json_mode": request.json_mode,
            "stop": list(request.stop),
        }
        blob = json.dumps(canonical, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)
        return hashlib.sha256(blob.encode("ascii")).hexdigest()

    async def get(self, key: str, *, allow_stale: bool = False) -> CachedResponse | None:
        if self._conn is None:
            return None
        now = self._clock()
        async with self._guard("read"):
            rows = await self._conn.execute_fetchall(_GET, {"key": key, "now": now, "cutoff": now - self._ttl})
        row = next(iter(rows), None)
        if row is None:
            return None
        stale = row[1] <= now - self._ttl
        if stale and not allow_stale:
            return None
        try:
            stored = Response.model_validate_json(row[0])
        except ValidationError:
            return None  # written by a version with another Response shape: a miss; the next put replaces it
        return CachedResponse(response=stored, created_at=row[1], stale=stale)

    async def put(self, key: str, response: Response) -> None:
        if self._conn is None:
            return
        now = self._clock()
        async with self._transaction("write") as conn:
            await conn.execute(_PUT, (key, response.model_dump_json(), now, now))
            await conn.execute("DELETE FROM responses WHERE created_at < ?", (now - STALE_FACTOR * self._ttl,))
            await conn.execute(_EVICT_LRU, (self._max_entries,))

    async def clear(self) -> None:
        if self._conn is None:
            return
        async with self._transaction("clear") as conn:
            await conn.execute("DELETE FROM responses")
            await conn.execute("UPDATE meta SET value = 0 WHERE key = 'evicted_hits'")

    async def stats(self) -> dict[str, int]:
        """entries stored, hits served since the last clear, size = bytes of stored responses."""
        if self._conn is None:
            return {"entries": 0, "hits": 0, "size": 0}
        async with self._guard("read stats from"):
            rows = await self._conn.execute_fetchall(_STATS)
        entries, live_hits, size, evicted_hits = next(iter(rows))
        return {"entries": entries, "hits": live_hits + evicted_hits, "size": size}

    @asynccontextmanager
    async def _guard(self, action: str) -> AsyncIterator[None]:
        # A cache failure should name the file and be catchable as ours, not leak sqlite3 types.
        try:
            yield
        except (sqlite3.Error, ValueError) as exc:  # aiosqlite raises ValueError once closed
            raise CacheError(f"cannot {action} the response cache {self._path}: {exc}") from exc

    @asynccontextmanager
    async def _transaction(self, action: str) -> AsyncIterator[aiosqlite.Connection]:
        conn = self._conn
        if conn is None:
            raise CacheError(f"the response cache {self._path} is closed")
        async with self._write_lock, self._guard(action):
            await conn.execute("BEGIN IMMEDIATE")  # take the write lock now, not halfway through
            try:
                yield conn
            except BaseException:
                await conn.rollback()
                raise
            await conn.commit()


async def _migrate(conn: aiosqlite.Connection, name: str) -> None:
    """Bring the file to SCHEMA_VERSION; one transaction, so racing openers serialize."""
    await conn.execute("BEGIN IMMEDIATE")
    try:
        tables = {row[0] for row in await conn.execute_fetchall("SELECT name FROM sqlite_master WHERE type='table'")}
        version = 0
        if "meta" in tables:
            rows = await conn.execute_fetchall("SELECT value FROM meta WHERE key = 'schema_version'")
            version = next(iter(rows), (0,))[0]
        elif tables:
            raise ConfigError("is an SQLite database of something else, not a response cache", file=name)
        if version > SCHEMA_VERSION:
            raise ConfigError(f"cache schema {version} is newer than this version understands", file=name)
        # Statement by statement: executescript would COMMIT first and break the transaction.
        for statement in (stmt for step in _MIGRATIONS[version:] for stmt in step):
            await conn.execute(statement)
        await conn.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (SCHEMA_VERSION,))
    except BaseException:
        await conn.rollback()
        raise
    await conn.commit()
