from __future__ import annotations

import asyncio
import sqlite3
import unicodedata
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from orchestrator.cache import CachedResponse, CacheError, ResponseCache
from orchestrator.errors import ConfigError
from orchestrator.types import Message, Request, Response, Usage

TTL = 100.0


class FakeClock:
    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def request(**changes: Any) -> Request:
    base = Request(
        model="gpt-4o-mini",
        messages=(Message(role="user", content="def f():\n    return 1\n"),),
        system="You review code.",
        max_tokens=256,
        temperature=0.2,
        stop=("```",),
    )
    return base.model_copy(update=changes)


def response(text: str = "looks fine") -> Response:
    return Response(
        model="gpt-4o-mini",
        provider="openai",
        text=text,
        usage=Usage(input_tokens=12, output_tokens=3, cost_usd=0.0001),
        finish_reason="stop",
    )


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def cache(tmp_path: Path, clock: FakeClock) -> AsyncIterator[ResponseCache]:
    async with await ResponseCache.open(tmp_path / "cache" / "responses.db", ttl_seconds=TTL, clock=clock) as c:
        yield c


async def test_miss_then_hit_returns_the_stored_response(cache: ResponseCache, clock: FakeClock) -> None:
    key = ResponseCache.key(request(), provider="openai")
    assert await cache.get(key) is None
    await cache.put(key, response())
    clock.advance(5)
    hit = await cache.get(key)
    assert hit == CachedResponse(response=response(), created_at=clock.now - 5, stale=False)
    assert hit.response.usage.cost_usd == 0.0001  # usage as originally reported, not zeroed
    assert await cache.stats() == {"entries": 1, "hits": 1, "size": len(response().model_dump_json())}


async def test_put_replaces_an_existing_entry(cache: ResponseCache) -> None:
    await cache.put("k", response("old"))
    await cache.put("k", response("new"))
    hit = await cache.get("k")
    assert hit is not None
    assert hit.response.text == "new"
    assert (await cache.stats())["entries"] == 1


def test_key_is_stable_however_the_request_is_built() -> None:
    key = ResponseCache.key(request(), provider="openai")
    assert len(key) == 64
    assert int(key, 16) >= 0
    rebuilt = Request.model_validate_json(
        '{"stop": ["```"], "temperature": 0.2, "max_tokens": 256, "system": "You review code.",'
        ' "messages": [{"content": "def f():\\n    return 1\\n", "role": "user"}], "model": "gpt-4o-mini"}'
    )
    assert ResponseCache.key(rebuilt, provider="openai") == key
    assert ResponseCache.key(request(), provider="openai") == key  # and across calls
    # An int temperature is the same setting as the equal float.
    assert ResponseCache.key(request(temperature=1)) == ResponseCache.key(request(temperature=1.0))


@pytest.mark.parametrize(
    "changes",
    [
        {"model": "gpt-4o"},
        {"system": None},
        {"system": ""},
        {"system": "You review code. "},
        {"messages": (Message(role="assistant", content="def f():\n    return 1\n"),)},
        {"messages": (Message(role="user", content="def f():\n\treturn 1\n"),)},  # tab vs spaces
        {"messages": (Message(role="user", content="def f():\r\n    return 1\r\n"),)},
        {"messages": (Message(role="user", content="def f():\n    return 1"),)},  # trailing newline
        {"messages": (Message(role="user", content="def f():\n    "), Message(role="user", content="return 1\n"))},
        {"max_tokens": 257},
        {"temperature": None},
        {"temperature": 0.0},
        {"json_mode": True},
        {"stop": ()},
        {"stop": ("```", "\n\n")},
    ],
)
def test_any_field_change_changes_the_key(changes: dict[str, Any]) -> None:
    assert ResponseCache.key(request(**changes)) != ResponseCache.key(request())


def test_key_covers_provider_and_unicode() -> None:
    assert ResponseCache.key(request(), provider="openai") != ResponseCache.key(request(), provider="openrouter")
    composed = "café = '日本語' 🚀"
    decomposed = unicodedata.normalize("NFD", composed)
    keys = {
        ResponseCache.key(request(messages=(Message(role="user", content=text),)))
        for text in (composed, decomposed, "cafe = '日本語' 🚀", "\ud800 lone surrogate")
    }
    assert len(keys) == 4  # text is hashed exactly: no normalization merges different code points


async def test_expired_entry_is_only_served_as_stale(cache: ResponseCache, clock: FakeClock) -> None:
    await cache.put("k", response())
    created = clock.now
    clock.advance(TTL + 1)
    assert await cache.get("k") is None
    stale = await cache.get("k", allow_stale=True)
    assert stale == CachedResponse(response=response(), created_at=created, stale=True)
    # Still stored (the last resort when every provider is down), and stale serves are not hits.
    assert await cache.stats() == {"entries": 1, "hits": 0, "size": len(response().model_dump_json())}
    fresh = await cache.get("k", allow_stale=True)
    assert fresh is not None
    assert fresh.stale


async def test_entries_older_than_seven_ttls_are_dropped_on_put(cache: ResponseCache, clock: FakeClock) -> None:
    await cache.put("old", response())
    clock.advance(7 * TTL + 1)
    await cache.put("new", response())
    assert await cache.get("old", allow_stale=True) is None
    assert await cache.get("new") is not None


async def test_lru_eviction_keeps_recently_used_entries(tmp_path: Path, clock: FakeClock) -> None:
    async with await ResponseCache.open(tmp_path / "c.db", ttl_seconds=TTL, max_entries=3, clock=clock) as cache:
        for key in ("a", "b", "c"):
            await cache.put(key, response(key))
            clock.advance(1)
        assert await cache.get("a") is not None  # touch the oldest: now "b" is least recently used
        clock.advance(1)
        await cache.put("d", response("d"))
        assert await cache.get("b") is None
        assert [await cache.get(k) is not None for k in ("a", "c", "d")] == [True, True, True]
        assert (await cache.stats())["entries"] == 3
        # Hits of evicted entries still count in the total served.
        await cache.put("e", response("e"))
        await cache.put("f", response("f"))
        await cache.put("g", response("g"))
        assert await cache.stats() == {"entries": 3, "hits": 4, "size": 3 * len(response("g").model_dump_json())}


@pytest.mark.parametrize(("ttl", "max_entries"), [(TTL, 0), (0, 1000)])
async def test_cache_off_stores_nothing(tmp_path: Path, ttl: float, max_entries: int) -> None:
    path = tmp_path / "off" / "c.db"
    async with await ResponseCache.open(path, ttl_seconds=ttl, max_entries=max_entries) as cache:
        await cache.put("k", response())
        assert await cache.get("k", allow_stale=True) is None
        assert await cache.stats() == {"entries": 0, "hits": 0, "size": 0}
        await cache.clear()
    assert not path.parent.exists()


async def test_negative_limits_are_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="must be >= 0"):
        await ResponseCache.open(tmp_path / "c.db", max_entries=-1)


async def test_two_caches_on_one_file_share_entries(tmp_path: Path, clock: FakeClock) -> None:
    path = tmp_path / "shared.db"
    async with (
        await ResponseCache.open(path, ttl_seconds=TTL, clock=clock) as first,
        await ResponseCache.open(path, ttl_seconds=TTL, clock=clock) as second,
    ):
        await first.put("k", response("from first"))
        hit = await second.get("k")
        assert hit is not None
        assert hit.response.text == "from first"
        # Concurrent writers on one file (and on one connection) serialize instead of failing.
        await asyncio.gather(*(c.put(f"k{i}", response()) for i in range(20) for c in (first, second)))
        assert (await first.stats())["entries"] == 21
        assert (await second.stats())["hits"] == 1
        await second.clear()
        assert await first.get("k", allow_stale=True) is None
        assert await first.stats() == {"entries": 0, "hits": 0, "size": 0}


async def test_reopen_keeps_entries_and_uses_wal(tmp_path: Path, clock: FakeClock) -> None:
    path = tmp_path / "c.db"
    async with await ResponseCache.open(path, ttl_seconds=TTL, clock=clock) as cache:
        await cache.put("k", response())
    async with await ResponseCache.open(path, ttl_seconds=TTL, clock=clock) as cache:
        assert await cache.get("k") is not None
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone() == (1,)
    conn.close()


async def test_in_memory_cache_works() -> None:
    async with await ResponseCache.open(":memory:") as cache:
        await cache.put("k", response())
        assert await cache.get("k") is not None


async def test_a_text_file_is_a_clear_config_error(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("these are my notes, not a database\n" * 100)
    with pytest.raises(ConfigError, match="notes.txt") as info:
        await ResponseCache.open(path)
    assert info.value.file == str(path)
    assert "not an SQLite database" in str(info.value)


async def test_another_programs_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "app.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE users (id INTEGER)")
    conn.close()
    with pytest.raises(ConfigError, match="app.db.*not a response cache"):
        await ResponseCache.open(path)
    with sqlite3.connect(path) as conn:  # and left untouched
        assert [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")] == ["users"]
    conn.close()


async def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "c.db"
    async with await ResponseCache.open(path):
        pass
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE meta SET value = 99 WHERE key = 'schema_version'")
    conn.close()
    with pytest.raises(ConfigError, match="schema 99 is newer"):
        await ResponseCache.open(path)


async def test_a_directory_path_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=str(tmp_path.name)):
        await ResponseCache.open(tmp_path)


async def test_closed_cache_behaves_as_off(tmp_path: Path) -> None:
    cache = await ResponseCache.open(tmp_path / "c.db")
    await cache.put("k", response())
    await cache.close()
    await cache.close()  # idempotent
    # Late callers during shutdown get a miss and a no-op, not an error.
    assert await cache.get("k") is None
    await cache.put("k", response())


async def test_runtime_sqlite_failures_are_cache_errors_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "c.db"
    async with await ResponseCache.open(path) as cache:
        with sqlite3.connect(path) as conn:
            conn.execute("DROP TABLE responses")
        conn.close()
        with pytest.raises(CacheError, match=r"c\.db.*no such table"):
            await cache.get("k")
        with pytest.raises(CacheError, match="no such table"):
            await cache.put("k", response())


async def test_an_entry_of_another_response_shape_is_a_miss(tmp_path: Path) -> None:
    path = tmp_path / "c.db"
    async with await ResponseCache.open(path) as cache:
        await cache.put("k", response())
        with sqlite3.connect(path) as conn:
            conn.execute("""UPDATE responses SET response = '{"text": "no model field"}'""")
        conn.close()
        assert await cache.get("k") is None
        await cache.put("k", response("replaced"))
        hit = await cache.get("k")
        assert hit is not None
        assert hit.response.text == "replaced"


async def test_a_parent_that_is_a_file_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "plain").write_text("x")
    with pytest.raises(ConfigError, match="plain"):
        await ResponseCache.open(tmp_path / "plain" / "c.db")
