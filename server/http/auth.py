"""Client API keys: a small SQLite table in the data directory, holding only hashes.

A key is 256 random bits, shown once when it is created (`orchestrator keys create NAME`)
and stored as its SHA-256: with that much entropy a slow hash would add nothing but
latency to every request. The gateway keeps the active hashes in memory and re-reads the
table when another process changed it (`PRAGMA data_version`, checked at most once a
second), so `orchestrator keys revoke NAME` takes effect within a second, no restart.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import sqlite3
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Self

from orchestrator.errors import InvalidInputError

PREFIX = "sk-orch-"  # shaped like other API keys, so secret scanners and our `redact` catch it
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS api_keys (id INTEGER PRIMARY KEY, name TEXT NOT NULL,
        hint TEXT NOT NULL, sha256 TEXT NOT NULL UNIQUE, created REAL NOT NULL, revoked REAL)""",
    # One active key per name; revoked ones stay listed.
    "CREATE UNIQUE INDEX IF NOT EXISTS api_keys_active_name ON api_keys (name) WHERE revoked IS NULL",
)


@dataclass(frozen=True, slots=True)
class KeyInfo:
    name: str
    hint: str  # the key's first characters, to tell keys apart
    created: float
    revoked: float | None


def digest(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def keys_path(data_dir: str | Path) -> Path:
    return Path(data_dir) / "keys.db"


class KeyStore:
    """The table; a plain sqlite3 connection (used by the CLI, and by the gateway once a second at most)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        fresh = not self.path.exists()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(self.path, timeout=5.0, isolation_level=None)
        if fresh:
            os.chmod(self.path, 0o600)  # hashes only, but nobody else needs to read them
        self._conn.execute("PRAGMA journal_mode=WAL")
        for statement in _SCHEMA:
            self._conn.execute(statement)

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def create(self, name: str) -> str:
        """A new key for `name`; the only time the key itself is ever seen."""
        if not _NAME.match(name):
            raise InvalidInputError(
                f"invalid key name {name!r}: 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit"
            )
        key = PREFIX + secrets.token_urlsafe(32)
        try:
            self._conn.execute(
                "INSERT INTO api_keys (name, hint, sha256, created) VALUES (?, ?, ?, ?)",
                (name, key[: len(PREFIX) + 4], digest(key), time.time()),
            )
        except sqlite3.IntegrityError:
            raise InvalidInputError(
                f"a key named {name!r} exists; revoke it first (`orchestrator keys revoke {name}`)"
            ) from None
        return key

    def revoke(self, name: str) -> bool:
        cursor = self._conn.execute(
            "UPDATE api_keys SET revoked = ? WHERE name = ? AND revoked IS NULL", (time.time(), name)
        )
        return cursor.rowcount > 0

    def list(self) -> list[KeyInfo]:
        rows = self._conn.execute("SELECT name, hint, created, revoked FROM api_keys ORDER BY created, id")
        return [KeyInfo(*row) for row in rows]

    def active(self) -> dict[str, str]:
        """sha256 → name of every key not revoked."""
        rows = self._conn.execute("SELECT sha256, name FROM api_keys WHERE revoked IS NULL")
        return dict(rows)

    def version(self) -> int:
        """Changes whenever another connection committed to the file."""
        return int(self._conn.execute("PRAGMA data_version").fetchone()[0])


class KeyChecker:
    """What the gateway asks on each request: whose key is this, if anyone's?"""

    def __init__(self, store: KeyStore, *, refresh_every: float = 1.0, clock: Callable[[], float] = time.monotonic):
        self._store = store
        self._every = refresh_every
        self._clock = clock
        self._active = store.active()
        self._version = store.version()
        self._checked = clock()

    @property
    def count(self) -> int:
        self._refresh()
        return len(self._active)

    def check(self, key: str | None) -> str | None:
        if not key:
            return None
        self._refresh()
        return self._active.get(digest(key))

    def _refresh(self) -> None:
        now = self._clock()
        if now - self._checked < self._every:
            return
        self._checked = now
        version = self._store.version()  # one page read, microseconds: fine on the event loop
        if version != self._version:
            self._version = version
            self._active = self._store.active()

    def close(self) -> None:
        self._store.close()


def presented_key(headers: Iterable[tuple[bytes, bytes]]) -> str | None:
    """The key from `Authorization: Bearer KEY` (OpenAI's SDKs) or `x-api-key: KEY`."""
    for name, value in headers:
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return token.strip()
        elif name == b"x-api-key" and value.strip():
            return value.decode("latin-1").strip()
    return None
