"""The retry/fallback loop against real providers on the fake server, with a fake clock and sleep."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

from orchestrator.errors import (
    AllProvidersUnavailable,
    AuthenticationError,
    ContextWindowError,
    InvalidRequestError,
    ProviderUnavailable,
    RateLimitError,
)
from orchestrator.providers.anthropic import AnthropicProvider
from orchestrator.providers.base import HttpClients, HTTPProvider
from orchestrator.providers.openai import OpenAIProvider
from orchestrator.resilience import (
    Attempt,
    CandidateLike,
    CircuitBreaker,
    CircuitOpen,
    IncompleteStream,
    Resilience,
    RetryPolicy,
    TokenBucket,
)
from orchestrator.types import Chunk, Message, Request, Response
from tests.fakes.provider_server import FakeProviderServer, Script

KEY = "sk-test-" + "S3cr3tK3y" * 4


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass(frozen=True)
class Cand:
    provider: str
    model: str
    context_window: int = 128_000


OA = Cand("openai", "gpt-small", 16_000)
OA2 = Cand("openai", "gpt-large", 128_000)
AN = Cand("anthropic", "claude-mid", 200_000)


@dataclass
class Rig:
    fake: FakeProviderServer
    clock: FakeClock
    waits: list[float]
    providers: dict[str, HTTPProvider]
    attempts: list[Attempt]

    def resilience(
        self,
        policy: RetryPolicy | None = None,
        *,
        requests_per_minute: int | None = None,
        tokens_per_minute: int | None = None,
        failure_threshold: int = 5,
        cooldown: float = 30.0,
    ) -> Resilience:
        async def sleep(seconds: float) -> None:
            self.waits.append(seconds)
            self.clock.advance(seconds)

        return Resilience(
            policy,
            requests_per_minute=requests_per_minute,
            tokens_per_minute=tokens_per_minute,
            failure_threshold=failure_threshold,
            cooldown=cooldown,
            clock=self.clock,
            sleep=sleep,
            rng=random.Random(7),
        )

    async def complete(self, c: Cand) -> Response:
        return await self.providers[c.provider].complete(request(c))

    def open_stream(self, c: Cand) -> AsyncIterator[Chunk]:
        return self.providers[c.provider].stream(request(c))

    def record(self, attempt: Attempt) -> None:
        self.attempts.append(attempt)

    def hits(self) -> list[str]:
        """Which provider each request reached, in order."""
        return [r.format for r in self.fake.requests]


def request(c: Cand) -> Request:
    return Request(model=c.model, messages=(Message(role="user", content="Say hello"),), max_tokens=32)


@pytest.fixture
async def rig(fake_provider: FakeProviderServer) -> AsyncIterator[Rig]:
    http = HttpClients(connect_timeout=2, read_timeout=5)
    base = fake_provider.base_url
    providers: dict[str, HTTPProvider] = {
        "openai": OpenAIProvider("openai", base_url=base + "/v1", api_key=KEY, http=http),
        "anthropic": AnthropicProvider("anthropic", base_url=base, api_key=KEY, http=http),
    }
    yield Rig(fake_provider, FakeClock(), [], providers, [])
    await http.close()


def test_candidates_satisfy_the_protocol() -> None:
    assert isinstance(OA, CandidateLike)


async def test_retry_after_is_honoured_on_the_same_candidate(rig: Rig, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="orchestrator.resilience")
    rig.fake.script(Script(error="rate_limit", retry_hint="retry-after", retry_after=1.5), Script(text="ok then"))
    res = rig.resilience()
    resp, used, attempts = await res.call([OA, AN], rig.complete, on_attempt=rig.record)
    assert resp.text == "ok then" and used == OA
    assert rig.waits == [1.5]
    assert rig.hits() == ["openai", "openai"]
    assert [type(a.error) for a in attempts] == [RateLimitError, type(None)]
    assert attempts == rig.attempts and attempts[1].waited == 1.5
    assert "openai/gpt-small: RateLimitError, retry 1 in 1.50s" in caplog.text
    assert KEY not in caplog.text


async def test_retry_after_above_the_cap_falls_back_at_once(rig: Rig) -> None:
    rig.fake.script(Script(error="rate_limit", retry_hint="retry-after", retry_after=60), Script(text="from claude"))
    resp, used, _ = await rig.resilience().call([OA, AN], rig.complete)
    assert resp.text == "from claude" and used == AN
    assert rig.waits == []
    assert rig.hits() == ["openai", "anthropic"]


async def test_a_bad_key_is_not_retried_on_the_same_provider(rig: Rig) -> None:
    rig.fake.script(Script(error="auth"), Script(text="anthropic here"))
    res = rig.resilience()
    resp, used, attempts = await res.call([OA, OA2, AN], rig.complete)
    assert used == AN and resp.text == "anthropic here"
    assert rig.hits() == ["openai", "anthropic"]  # OA2 was never asked
    assert isinstance(attempts[0].error, AuthenticationError) and rig.waits == []
    assert res.breaker("openai").failures == 0  # a bad key is not an outage


async def test_context_window_error_moves_to_a_larger_model(rig: Rig) -> None:
    small_anthropic = Cand("anthropic", "claude-tiny", 8_000)
    rig.fake.script(Script(error="context_length"), Script(text="fits now"))
    resp, used, attempts = await rig.resilience().call([OA, small_anthropic, AN], rig.complete)
    assert used == AN and resp.text == "fits now"
    assert [r.json["model"] for r in rig.fake.requests] == ["gpt-small", "claude-mid"]
    assert isinstance(attempts[0].error, ContextWindowError) and len(attempts) == 2


async def test_backoff_grows_with_jitter_within_bounds(rig: Rig) -> None:
    policy = RetryPolicy(max_attempts=5, base_delay=0.5, max_delay=2.0, jitter=0.2)
    rig.fake.script(*[Script(error="unavailable")] * 5, Script(text="finally"))
    res = rig.resilience(policy, failure_threshold=10)
    resp, used, attempts = await res.call([OA, AN], rig.complete)
    assert used == AN and resp.text == "finally"
    assert rig.hits() == ["openai"] * 5 + ["anthropic"]
    nominal = [0.5, 1.0, 2.0, 2.0]  # base * 2**n, capped at max_delay
    assert len(rig.waits) == 4
    for wait, top in zip(rig.waits, nominal, strict=True):
        assert top * 0.8 <= wait <= top
    assert rig.waits[0] < rig.waits[1] < rig.waits[2]
    assert len(set(rig.waits)) == 4  # jittered: not the bare nominal values
    assert [a.waited for a in attempts[1:5]] == rig.waits and attempts[5].waited == 0


async def test_circuit_breaker_opens_skips_probes_and_closes(rig: Rig) -> None:
    res = rig.resilience(RetryPolicy(max_attempts=1), failure_threshold=2, cooldown=30)
    breaker = res.breaker("openai")

    async def run(*scripts: Script) -> Cand:
        rig.fake.reset()
        rig.fake.script(*scripts)
        _, used, _ = await res.call([OA, AN], rig.complete)
        return used

    assert await run(Script(error="unavailable"), Script()) == AN and breaker.state == "closed"
    assert await run(Script(error="unavailable"), Script()) == AN
    assert breaker.state == "open" and not res.available("openai") and res.states()["openai"] == "open"
    assert breaker.retry_at == rig.clock.now + 30
    assert await run(Script()) == AN and rig.hits() == ["anthropic"]  # skipped without a request

    rig.clock.advance(30)
    assert breaker.state == "half_open" and res.available("openai")
    assert await run(Script(error="unavailable"), Script()) == AN  # the probe fails
    assert rig.hits() == ["openai", "anthropic"]
    assert breaker.state == "open" and breaker.retry_at == rig.clock.now + 30  # a fresh cooldown

    rig.clock.advance(30)
    assert await run(Script(text="back")) == OA and rig.hits() == ["openai"]
    assert breaker.state == "closed" and breaker.failures == 0


def test_half_open_lets_exactly_one_probe_through() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker("x", failure_threshold=1, cooldown=5, clock=clock)
    assert breaker.allow()
    breaker.record_failure()
    assert breaker.state == "open" and not breaker.allow()
    clock.advance(5)
    assert breaker.allow() and not breaker.allow()  # one probe at a time
    breaker.release()  # the probe ended without a verdict (cancelled, bad key)
    assert breaker.state == "half_open" and breaker.allow()
    breaker.record_success()
    assert breaker.state == "closed" and breaker.allow() and breaker.allow()


async def test_rpm_bucket_delays_then_refuses_and_falls_back(rig: Rig) -> None:
    rig.fake.default = Script(text="ok")
    res = rig.resilience(RetryPolicy(bucket_max_wait=60), requests_per_minute=2)
    for _ in range(2):
        await res.call([OA, AN], rig.complete)
    assert rig.waits == []
    _, used, attempts = await res.call([OA, AN], rig.complete)
    assert used == OA and rig.waits == [pytest.approx(30.0)] and attempts[0].waited == pytest.approx(30.0)

    strict = rig.resilience(requests_per_minute=2)  # bucket_max_wait 10s: 30s is too long
    for _ in range(2):
        await strict.call([OA, AN], rig.complete)
    rig.waits.clear()
    rig.fake.reset()
    rig.fake.default = Script(text="ok")
    _, used, attempts = await strict.call([OA, AN], rig.complete)
    assert used == AN and rig.waits == [] and rig.hits() == ["anthropic"]
    assert [a.provider for a in attempts] == ["anthropic"]


async def test_tpm_bucket_delays_then_refuses_and_falls_back(rig: Rig) -> None:
    rig.fake.default = Script(text="ok")
    res = rig.resilience(RetryPolicy(bucket_max_wait=60), tokens_per_minute=1000)
    await res.call([OA, AN], rig.complete, tokens=800)
    _, used, _ = await res.call([OA, AN], rig.complete, tokens=800)  # 600 more tokens at 1000/min
    assert used == OA and rig.waits == [pytest.approx(36.0)]

    rig.waits.clear()
    res = rig.resilience(tokens_per_minute=1000)
    await res.call([OA, AN], rig.complete, tokens=800)
    with pytest.raises(AllProvidersUnavailable) as err:
        await res.call([OA], rig.complete, tokens=800)
    refused = err.value.errors["openai/gpt-small"]
    assert isinstance(refused, RateLimitError) and refused.provider == "local bucket"
    assert err.value.retry_after == pytest.approx(36.0) and rig.waits == []
    _, used, _ = await res.call([OA, AN], rig.complete, tokens=800)
    assert used == AN


async def test_token_bucket_larger_than_capacity_waits_for_a_full_bucket() -> None:
    clock, waits = FakeClock(), []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)
        clock.advance(seconds)

    bucket = TokenBucket(60, clock=clock, sleep=sleep)
    assert await bucket.acquire(100, max_wait=0) == 0  # full: goes at once, leaves a debt of 40
    assert await bucket.acquire(30, max_wait=100) == pytest.approx(70.0)
    with pytest.raises(RateLimitError) as err:
        await bucket.acquire(100, max_wait=5)
    assert err.value.retry_after == pytest.approx(60.0) and waits == [pytest.approx(70.0)]


async def test_stream_cut_after_the_first_token_is_incomplete(rig: Rig) -> None:
    rig.fake.script(Script(chunks=["Hel", "lo ", "there"], cut_after=1), Script(text="never asked"))
    res = rig.resilience()
    seen: list[str] = []
    with pytest.raises(IncompleteStream) as err:
        async for _, chunk in res.stream([OA, AN], rig.open_stream, on_attempt=rig.record):
            seen.append(chunk.text)
    assert seen == ["Hel"] and err.value.partial_text == "Hel"
    assert (err.value.provider, err.value.model) == ("openai", "gpt-small")
    assert "cut after 3 characters: the answer is incomplete" in str(err.value)
    assert rig.hits() == ["openai"]
    assert [type(a.error) for a in rig.attempts] == [IncompleteStream]


async def test_stream_failing_before_the_first_token_falls_back(rig: Rig) -> None:
    rig.fake.script(Script(error="unavailable"), Script(chunks=["from ", "claude"]))
    res = rig.resilience(RetryPolicy(max_attempts=1))

    async def record(attempt: Attempt) -> None:  # the ledger's writer is async: it is awaited
        await asyncio.sleep(0)
        rig.attempts.append(attempt)

    pairs = [pair async for pair in res.stream([OA, AN], rig.open_stream, on_attempt=record)]
    assert "".join(c.text for _, c in pairs) == "from claude"
    assert {used for used, _ in pairs} == {AN} and pairs[-1][1].usage is not None
    assert rig.hits() == ["openai", "anthropic"]
    assert [type(a.error) for a in rig.attempts] == [ProviderUnavailable, type(None)]


async def test_all_down_reports_every_error_and_the_earliest_retry(rig: Rig) -> None:
    res = rig.resilience(failure_threshold=1, cooldown=30)
    local = Cand("local", "llama")
    res.breaker("local").record_failure()  # open since now, probe in 30s
    rig.clock.advance(18)
    rig.fake.script(
        Script(error="rate_limit", retry_hint="retry-after", retry_after=45),
        Script(error="rate_limit", retry_hint="retry-after", retry_after=25),
    )
    with pytest.raises(AllProvidersUnavailable) as err:
        await res.call([OA, local, AN], rig.complete)
    errors = err.value.errors
    assert list(errors) == ["openai/gpt-small", "local/llama", "anthropic/claude-mid"]
    assert isinstance(errors["openai/gpt-small"], RateLimitError)
    skipped = errors["local/llama"]
    assert isinstance(skipped, CircuitOpen) and isinstance(skipped, ProviderUnavailable)
    assert skipped.retry_after == pytest.approx(12.0) and "circuit open" in str(skipped)
    assert isinstance(errors["anthropic/claude-mid"], RateLimitError)
    assert err.value.retry_after == pytest.approx(12.0)  # the local probe, before both Retry-Afters


async def test_invalid_request_is_raised_at_once(rig: Rig) -> None:
    rig.fake.script(Script(status=404), Script(text="not asked"))
    with pytest.raises(InvalidRequestError):
        await rig.resilience().call([OA, AN], rig.complete, on_attempt=rig.record)
    assert rig.hits() == ["openai"] and len(rig.attempts) == 1 and rig.waits == []


async def test_cancelling_the_consumer_closes_the_upstream(rig: Rig) -> None:
    rig.fake.script(Script(chunks=[f"w{i} " for i in range(200)], tokens_per_second=50))
    res = rig.resilience()
    first = asyncio.Event()

    async def consume() -> None:
        async for _, chunk in res.stream([OA, AN], rig.open_stream):
            if chunk.text:
                first.set()

    task = asyncio.create_task(consume())
    await asyncio.wait_for(first.wait(), 5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await rig.fake.wait_disconnect()
    assert rig.fake.disconnects == 1 and rig.fake.completed_streams == 0
    assert rig.hits() == ["openai"] and res.states() == {"openai": "closed"}


async def test_closing_the_stream_closes_the_upstream(rig: Rig) -> None:
    rig.fake.script(Script(chunks=[f"w{i} " for i in range(200)], tokens_per_second=50))
    stream = rig.resilience().stream([OA, AN], rig.open_stream)
    used, chunk = await anext(stream)
    assert used == OA and chunk.text
    await stream.aclose()
    await rig.fake.wait_disconnect()
    assert rig.fake.completed_streams == 0
