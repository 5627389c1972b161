"""The three wire formats against the fake provider server, over real HTTP."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable

import pytest

from orchestrator.catalog import Catalog
from orchestrator.errors import (
    AuthenticationError,
    BadResponse,
    ContextWindowError,
    ProviderError,
    ProviderTimeout,
    ProviderUnavailable,
    RateLimitError,
)
from orchestrator.providers.anthropic import AnthropicProvider
from orchestrator.providers.base import HttpClients, HTTPProvider
from orchestrator.providers.gemini import GeminiProvider
from orchestrator.providers.openai import OpenAIProvider
from orchestrator.tokens import TokenCounter
from orchestrator.types import Chunk, Message, Request
from tests.fakes.provider_server import FakeProviderServer, Script

KEY = "sk-test-" + "S3cr3tK3y" * 4
CATALOG = Catalog.load()
COUNTER = TokenCounter()
FORMATS = ["openai", "anthropic", "gemini"]
MODELS = {"openai": "gpt-6.1-terra", "anthropic": "claude-sonnet-5-5", "gemini": "gemini-3.8-flash"}


@pytest.fixture
async def http() -> AsyncIterator[HttpClients]:
    clients = HttpClients(connect_timeout=2, read_timeout=5)
    yield clients
    await clients.close()


Make = Callable[..., HTTPProvider]


@pytest.fixture
def make(fake_provider: FakeProviderServer, http: HttpClients) -> Make:
    def build(fmt: str, *, key: str | None = KEY, base_url: str | None = None, clients: HttpClients | None = None):
        base = base_url or fake_provider.base_url
        cls = {"openai": OpenAIProvider, "anthropic": AnthropicProvider, "gemini": GeminiProvider}[fmt]
        url = base + "/v1" if fmt == "openai" else base
        return cls(fmt, base_url=url, api_key=key, http=clients or http, catalog=CATALOG, counter=COUNTER)

    return build


def request(fmt: str, text: str = "Say hello") -> Request:
    return Request(model=MODELS[fmt], system="Be brief.", messages=(Message(role="user", content=text),), max_tokens=64)


async def collect(provider: HTTPProvider, req: Request) -> tuple[list[Chunk], list[str]]:
    chunks: list[Chunk] = []
    async for chunk in provider.stream(req):
        chunks.append(chunk)
    return chunks, [c.text for c in chunks if c.text]


@pytest.mark.parametrize("fmt", FORMATS)
async def test_complete_usage_and_cost(fmt: str, make: Make, fake_provider: FakeProviderServer) -> None:
    fake_provider.script(Script(text="Hello there, developer.", usage=(1200, 3400)))
    resp = await make(fmt).complete(request(fmt))
    assert resp.text == "Hello there, developer."
    assert (resp.usage.input_tokens, resp.usage.output_tokens) == (1200, 3400) and not resp.usage.estimated
    info = CATALOG.find(fmt, MODELS[fmt])
    assert info is not None
    assert resp.usage.cost_usd == pytest.approx(1200 / 1e6 * info.input_per_mtok + 3400 / 1e6 * info.output_per_mtok)
    assert resp.provider == fmt and resp.finish_reason
    sent = fake_provider.requests[-1]
    assert not sent.stream
    if fmt == "openai":
        assert sent.headers["Authorization"] == f"Bearer {KEY}"
        assert sent.json["messages"][0] == {"role": "system", "content": "Be brief."}
    elif fmt == "anthropic":
        assert sent.headers["x-api-key"] == KEY and sent.headers["anthropic-version"] == "2023-06-01"
        assert sent.json["system"] == "Be brief." and sent.json["max_tokens"] == 64
    else:
        assert sent.headers["x-goog-api-key"] == KEY and "key=" not in sent.path
        assert sent.json["systemInstruction"] == {"parts": [{"text": "Be brief."}]}


@pytest.mark.parametrize("fmt", FORMATS)
async def test_stream_chunks_then_usage(fmt: str, make: Make, fake_provider: FakeProviderServer) -> None:
    fake_provider.script(Script(chunks=["Hel", "lo ", "wor", "ld"], usage=(10, 4)))
    chunks, texts = await collect(make(fmt), request(fmt))
    assert texts == ["Hel", "lo ", "wor", "ld"]
    final = chunks[-1]
    assert final.text == "" and final.usage is not None and final.finish_reason
    assert (final.usage.input_tokens, final.usage.output_tokens) == (10, 4)
    assert all(c.usage is None for c in chunks[:-1])
    assert fake_provider.requests[-1].stream


@pytest.mark.parametrize("fmt", FORMATS)
async def test_sse_lines_split_across_tcp_writes(fmt: str, make: Make, fake_provider: FakeProviderServer) -> None:
    fake_provider.script(Script(text="split across writes ünïcode ✓", split_writes=True))
    _chunks, texts = await collect(make(fmt), request(fmt))
    assert "".join(texts) == "split across writes ünïcode ✓"


@pytest.mark.parametrize("fmt", FORMATS)
async def test_cut_stream_is_an_error_never_a_short_success(
    fmt: str, make: Make, fake_provider: FakeProviderServer
) -> None:
    fake_provider.script(Script(chunks=["one ", "two ", "three ", "four"], cut_after=2))
    seen: list[str] = []
    with pytest.raises(BadResponse) as err:
        async for chunk in make(fmt).stream(request(fmt)):
            seen.append(chunk.text)
    assert seen == ["one ", "two "]
    assert err.value.retryable


@pytest.mark.parametrize("fmt", FORMATS)
async def test_malformed_json(fmt: str, make: Make, fake_provider: FakeProviderServer) -> None:
    fake_provider.script(Script(malformed=True), Script(malformed=True))
    with pytest.raises(BadResponse, match="malformed"):
        await make(fmt).complete(request(fmt))
    with pytest.raises(BadResponse, match="malformed"):
        await collect(make(fmt), request(fmt))


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize(
    ("error", "kind", "status"),
    [
        ("auth", AuthenticationError, None),
        ("context_length", ContextWindowError, 400),
        ("server_error", ProviderUnavailable, 500),
        ("unavailable", ProviderUnavailable, 503),
        ("overloaded", ProviderUnavailable, None),
    ],
)
@pytest.mark.parametrize("streaming", [False, True])
async def test_error_kinds(
    fmt: str, error: str, kind: type, status: int | None, streaming: bool, make: Make, fake_provider: FakeProviderServer
) -> None:
    fake_provider.script(Script(error=error))
    provider = make(fmt)
    with pytest.raises(kind) as err:
        if streaming:
            await collect(provider, request(fmt))
        else:
            await provider.complete(request(fmt))
    assert type(err.value) is kind
    if status is not None:
        assert err.value.status == status
    if error == "overloaded" and fmt == "anthropic":
        assert err.value.status == 529
    assert err.value.provider == fmt and KEY not in str(err.value) and KEY not in repr(err.value)


@pytest.mark.parametrize(
    ("fmt", "hint", "expected"),
    [
        ("openai", "retry-after", 3.0),
        ("openai", "openai-reset", 3.0),
        ("anthropic", "retry-after", 3.0),
        ("anthropic", "anthropic-reset", 3.0),
        ("gemini", "gemini-retryinfo", 3.0),
    ],
)
async def test_rate_limit_retry_hints(
    fmt: str, hint: str, expected: float, make: Make, fake_provider: FakeProviderServer
) -> None:
    fake_provider.script(Script(error="rate_limit", retry_hint=hint, retry_after=expected))
    with pytest.raises(RateLimitError) as err:
        await make(fmt).complete(request(fmt))
    assert err.value.status == 429 and err.value.retryable
    assert err.value.retry_after is not None
    # An RFC 3339 reset time is rounded by the clock between server and client.
    assert err.value.retry_after == pytest.approx(expected, abs=1.1)


@pytest.mark.parametrize("fmt", FORMATS)
async def test_error_inside_a_200_stream(fmt: str, make: Make, fake_provider: FakeProviderServer) -> None:
    fake_provider.script(Script(chunks=["partial ", "answer"], stream_error="overloaded_error"))
    with pytest.raises(ProviderError):
        await collect(make(fmt), request(fmt))


@pytest.mark.parametrize("fmt", FORMATS)
async def test_cancellation_closes_the_upstream_stream(fmt: str, make: Make, fake_provider: FakeProviderServer) -> None:
    fake_provider.script(Script(chunks=[f"w{i} " for i in range(200)], tokens_per_second=50))
    first = asyncio.Event()

    async def consume() -> None:
        async for chunk in make(fmt).stream(request(fmt)):
            if chunk.text:
                first.set()

    task = asyncio.create_task(consume())
    await asyncio.wait_for(first.wait(), 5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await fake_provider.wait_disconnect(timeout=5)
    assert fake_provider.disconnects == 1 and fake_provider.completed_streams == 0


@pytest.mark.parametrize("fmt", FORMATS)
async def test_connection_refused_is_unavailable(fmt: str, make: Make, unused_tcp_port: int) -> None:
    provider = make(fmt, base_url=f"http://127.0.0.1:{unused_tcp_port}")
    with pytest.raises(ProviderUnavailable, match="cannot reach") as err:
        await provider.complete(request(fmt))
    assert err.value.retryable


async def test_read_timeout(make: Make, fake_provider: FakeProviderServer) -> None:
    slow = HttpClients(connect_timeout=1, read_timeout=0.2)
    try:
        fake_provider.script(Script(first_byte_delay=2.0))
        with pytest.raises(ProviderTimeout):
            await make("openai", clients=slow).complete(request("openai"))
    finally:
        await slow.close()


async def test_the_key_never_reaches_a_log(
    make: Make, fake_provider: FakeProviderServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="aiohttp")
    for fmt in FORMATS:
        provider = make(fmt)
        assert KEY not in repr(provider)
        fake_provider.script(
            Script(error="auth"),
            Script(error="rate_limit", retry_hint="retry-after"),
            Script(chunks=["a", "b"], cut_after=1),
            Script(text="ok"),
        )
        for _ in range(3):
            try:
                await collect(provider, request(fmt))
            except ProviderError:
                # The traceback carries each exception's message: the key must be in none.
                logging.getLogger("test").exception("provider failed")
        await provider.complete(request(fmt))
    assert caplog.records, "the scenario above logs: capture must not be empty"
    assert KEY not in caplog.text


async def test_usage_missing_from_the_answer_is_estimated(make: Make, fake_provider: FakeProviderServer) -> None:
    """Some local servers send no usage: we count with tiktoken and mark it estimated."""
    body = {
        "choices": [{"message": {"role": "assistant", "content": "four words right here"}, "finish_reason": "stop"}]
    }
    fake_provider.script(Script(body=body))
    resp = await make("openai").complete(request("openai"))
    assert resp.text == "four words right here"
    assert resp.usage.estimated and resp.usage.output_tokens == COUNTER.count("four words right here")
    assert resp.usage.input_tokens > 0 and resp.usage.cost_usd > 0
