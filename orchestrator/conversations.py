"""Conversations: chat histories that persist in SQLite, to list, show and continue.

Every front end shares them (an editor's chat panel, an agent, the HTTP API), so a
conversation started in one can be continued in another.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
import uuid
from pathlib import Path
from typing import Self

import aiosqlite
from pydantic import BaseModel, ConfigDict

from .errors import ConfigError, InvalidInputError
from .types import Message

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS conversations (id TEXT PRIMARY KEY, title TEXT NOT NULL,
        front_end TEXT NOT NULL, created_at REAL NOT NULL, updated_at REAL NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS messages (conversation TEXT NOT NULL REFERENCES conversations(id)
        ON DELETE CASCADE, seq INTEGER NOT NULL, role TEXT NOT NULL, content TEXT NOT NULL,
        model TEXT, created_at REAL NOT NULL, PRIMARY KEY (conversation, seq))""",
    "CREATE INDEX IF NOT EXISTS conversations_updated ON conversations (updated_at)",
)


class StoredMessage(BaseModel):
    model_config = ConfigDict(frozen=True)

    role: str
    content: str
    model: str | None = None
    created_at: float


class ConversationSummary(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str
    title: str
    front_end: str
    created_at: float
    updated_at: float
    message_count: int


class Conversation(ConversationSummary):
    messages: list[StoredMessage]

    def history(self) -> list[Message]:
        return [Message(role=m.role, content=m.content) for m in self.messages]  # type: ignore[arg-type]


class ConversationStore:
    def __init__(self, conn: aiosqlite.Connection, path: str):
        self._conn = conn
        self._path = path
        self._lock = asyncio.Lock()

    @classmethod
    async def open(cls, path: str | Path) -> ConversationStore:
        name = str(path)
        if name != ":memory:":
            await asyncio.to_thread(Path(name).parent.mkdir, parents=True, exist_ok=True)
        conn = aiosqlite.connect(name, timeout=10.0, isolation_level=None)
        try:
            await conn
            await conn.execute_fetchall("PRAGMA journal_mode=WAL")
            await conn.execute_fetchall("PRAGMA foreign_keys=ON")
            for statement in _SCHEMA:
                await conn.execute(statement)
        except BaseException as exc:
            await conn.close()
            if isinstance(exc, sqlite3.Error):
                raise ConfigError(f"cannot use as a conversation store: {exc}", file=name) from exc
            raise
        return cls(conn, name)

    async def close(self) -> None:
        await self._conn.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.close()

    async def create(self, title: str, *, front_end: str = "core") -> str:
        conversation_id = uuid.uuid4().hex
        now = time.time()
        await self._conn.execute(
            "INSERT INTO conversations (id, title, front_end, created_at, updated_at) VALUES (?, ?, ?, ?, ?)",
            (conversation_id, title.strip()[:80] or "conversation", front_end, now, now),
        )
        return conversation_id

    async def append(self, conversation_id: str, messages: list[Message], *, model: str | None = None) -> None:
        now = time.time()
        async with self._lock:
            await self._conn.execute("BEGIN IMMEDIATE")
            try:
                rows = await self._conn.execute_fetchall(
                    "SELECT COALESCE(MAX(seq), -1) FROM messages WHERE conversation = ?", (conversation_id,)
                )
                seq = int(next(iter(rows))[0]) + 1
                for offset, message in enumerate(messages):
                    await self._conn.execute(
                        "INSERT INTO messages (conversation, seq, role, content, model, created_at) "
                        "VALUES (?, ?, ?, ?, ?, ?)",
                        (
                            conversation_id,
                            seq + offset,
                            message.role,
                            message.content,
                            model if message.role == "assistant" else None,
                            now,
                        ),
                    )
                await self._conn.execute("UPDATE conversations SET updated_at = ? WHERE id = ?", (now, conversation_id))
                await self._conn.execute("COMMIT")
            except BaseException:
                await self._conn.execute("ROLLBACK")
                raise

    async def get(self, conversation_id: str) -> Conversation:
        rows = await self._conn.execute_fetchall(
            "SELECT id, title, front_end, created_at, updated_at FROM conversations WHERE id = ?",
            (conversation_id,),
        )
        head = next(iter(rows), None)
        if head is None:
            raise InvalidInputError(f"no conversation {conversation_id!r}; list them with the conversations verb")
        messages = await self._conn.execute_fetchall(
            "SELECT role, content, model, created_at FROM messages WHERE conversation = ? ORDER BY seq",
            (conversation_id,),
        )
        stored = [StoredMessage(role=r[0], content=r[1], model=r[2], created_at=r[3]) for r in messages]
        return Conversation(
            id=head[0],
            title=head[1],
            front_end=head[2],
            created_at=head[3],
            updated_at=head[4],
            message_count=len(stored),
            messages=stored,
        )

    async def list(self, limit: int = 50) -> list[ConversationSummary]:
        rows = await self._conn.execute_fetchall(
            "SELECT c.id, c.title, c.front_end, c.created_at, c.updated_at, COUNT(m.seq) FROM conversations c "
            "LEFT JOIN messages m ON m.conversation = c.id GROUP BY c.id ORDER BY c.updated_at DESC LIMIT ?",
            (max(1, limit),),
        )
        return [
            ConversationSummary(
                id=r[0], title=r[1], front_end=r[2], created_at=r[3], updated_at=r[4], message_count=r[5]
            )
            for r in rows
        ]

    async def delete(self, conversation_id: str) -> None:
        await self._conn.execute("DELETE FROM conversations WHERE id = ?", (conversation_id,))
