"""The one retry and fallback loop: every provider call goes through `Resilience`.

Providers only map HTTP failures onto the error tree; deciding what to do about them
happens here, once. The rules, by error:

    AuthenticationError      skip every remaining candidate of that provider (a bad key stays bad)
    ContextWindowError       skip remaining candidates with no larger context window
    other non-retryable      raise at once: the request is wrong, another model would hide the bug
    retryable (429, 5xx, timeout, malformed)
                             count against the provider's circuit breaker, retry the same
                             candidate with backoff (or its Retry-After, when not too long),
                             then fall back to the next candidate

A stream falls back only until its first text chunk: after that the user has seen part of
an answer, and a cut is raised as `IncompleteStream`, never passed off as a short success.
Clock and sleep are injected so that tests never wait for real.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import random
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager, aclosing, nullcontext
from dataclasses import dataclass
from typing import Any, Generic, Literal, Protocol, TypeVar, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

from .errors import (
    AllProvidersUnavailable,
    AuthenticationError,
    BadResponse,
    ContextWindowError,
    ProviderError,
    ProviderUnavailable,
    RateLimitError,
)
from .types import Chunk

log = logging.getLogger(__name__)

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[Any]]
T = TypeVar("T")


@runtime_checkable
class CandidateLike(Protocol):
    """What the loop needs of a routing candidate; routing's own objects carry more."""

    provider: str
    model: str
    context_window: int


C = TypeVar("C", bound=CandidateLike)


@dataclass(frozen=True, slots=True)
class Attempt:
    """One try of one candidate, for the ledger and the routing reason. Times are clock times."""

    provider: str
    model: str
    error: ProviderError | None
    waited: float  # backoff and rate-bucket waits spent just before this try
    started: float
    ended: float


OnAttempt = Callable[[Attempt], Awaitable[None] | None]


class IncompleteStream(BadResponse):
    """A stream failed after text was already handed on: not retried, and never a success."""

    def __init__(self, partial_text: str, *, provider: str, model: str, cause: ProviderError | None = None):
        self.partial_text = partial_text
        self.model = model
        why = f" ({type(cause).__name__})" if cause is not None else ""
        super().__init__(
            f"the stream from {provider}/{model}{why} was cut after {len(partial_text)} characters: "
            "the answer is incomplete",
            provider=provider,
            status=getattr(cause, "status", None),
        )


class CircuitOpen(ProviderUnavailable):
    """A candidate skipped unasked because its provider's circuit is open."""

    def __init__(self, provider: str, retry_after: float | None):
        self.retry_after = retry_after  # seconds until the probe; None: a probe is under way now
        why = f"next probe in {retry_after:.0f}s" if retry_after is not None else "half-open, a probe is in flight"
        super().__init__(f"circuit open for {provider} ({why})", provider=provider)


class CircuitBreaker:
    """Per provider: stop calling it after repeated outages, then let one probe find out if it is back."""

    def __init__(
        self, provider: str, *, failure_threshold: int = 5, cooldown: float = 30.0, clock: Clock = time.monotonic
    ):
        self.provider = provider
        self.failure_threshold = failure_threshold
        self.cooldown = cooldown
        self.failures = 0
        self._clock = clock
        self._open = False
        self._opened_at = 0.0
        self._probing = False

    @property
    def state(self) -> Literal["closed", "open", "half_open"]:
        if not self._open:
            return "closed"
        # Derived from the clock rather than a timer task: nothing to cancel, nothing to leak.
        return "half_open" if self._clock() >= self._opened_at + self.cooldown else "open"

    @property
    def retry_at(self) -> float | None:
        return self._opened_at + self.cooldown if self.state == "open" else None

    def allow(self) -> bool:
        state = self.state
        if state == "closed":
            return True
        if state == "open" or self._probing:
            return False
        self._probing = True  # the one probe; the others keep skipping until it reports
        return True

    def release(self) -> None:
        """Free the probe slot when a try ends in neither success nor outage (bad key, cancelled)."""
        self._probing = False

    def record_success(self) -> None:
        self._open = self._probing = False
        self.failures = 0

    def record_failure(self) -> None:
        self.failures += 1
        self._probing = False
        # A failed probe re-opens with a fresh cooldown; failures of calls that were already
        # in flight when the circuit opened do not extend it.
        if self.state == "half_open" or (not self._open and self.failures >= self.failure_threshold):
            self._open, self._opened_at = True, self._clock()
            log.warning("circuit for %s opened after %d failures", self.provider, self.failures)


class TokenBucket:
    """Requests or tokens per minute. Starts full, refills continuously."""

    def __init__(self, per_minute: float, *, clock: Clock = time.monotonic, sleep: Sleep = asyncio.sleep):
        if per_minute <= 0:
            raise ValueError(f"a rate limit must be positive, not {per_minute}")
        self.capacity = float(per_minute)
        self._rate = self.capacity / 60.0
        self._level = self.capacity
        self._clock = clock
        self._sleep = sleep
        self._updated = clock()

    def _refill(self) -> None:
        now = self._clock()
        self._level = min(self.capacity, self._level + (now - self._updated) * self._rate)
        self._updated = now

    async def acquire(self, amount: float = 1, *, max_wait: float) -> float:
        self._refill()
        # More than the bucket holds goes once it is full (and leaves a debt): never a deadlock.
        need = min(amount, self.capacity)
        wait = max(0.0, (need - self._level) / self._rate)
        if wait > max_wait:
            msg = f"local rate limit: {amount:g} would wait {wait:.1f}s (more than {max_wait:g}s)"
            raise RateLimitError(msg, provider="local bucket", status=None, retry_after=wait)
        # Taken now, before sleeping, so concurrent callers queue up behind this one instead of
        # all waking for the same refill.
        self._level -= amount
        if wait > 0:
            try:
                await self._sleep(wait)
            except asyncio.CancelledError:
                self.refund(amount)
                raise
        return wait

    def refund(self, amount: float) -> None:
        """Give back what an acquire took for a call that was never made."""
        self._level = min(self.capacity, self._level + amount)


class RetryPolicy(BaseModel):
    """How hard to try; the defaults are the product defaults."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_attempts: int = Field(3, ge=1)  # per candidate, for retryable errors
    base_delay: float = Field(0.5, ge=0)
    max_delay: float = Field(8.0, ge=0)
    jitter: float = Field(0.2, ge=0, le=1)  # fraction by which a backoff delay may be shortened
    retry_after_cap: float = Field(20.0, ge=0)  # a longer Retry-After: fall back at once instead
    bucket_max_wait: float = Field(10.0, ge=0)

    def backoff(self, retry: int, rng: random.Random) -> float:
        """Delay before retry number `retry` (0-based): exponential, capped, jittered downwards.

        Jitter only shortens, so `max_delay` is a true bound, and clients that failed together
        do not come back together.
        """
        nominal = min(self.max_delay, self.base_delay * 2**retry)
        return nominal * (1 - self.jitter * rng.random())


class Resilience:
    """Breakers and buckets per provider, and the loop that uses them; one per process."""

    def __init__(
        self,
        policy: RetryPolicy | None = None,
        *,
        requests_per_minute: int | None = None,
        tokens_per_minute: int | None = None,
        failure_threshold: int = 5,
        cooldown: float = 30.0,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
        rng: random.Random | None = None,
    ):
        self.policy = policy or RetryPolicy()
        self._rpm = requests_per_minute
        self._tpm = tokens_per_minute
        self._failure_threshold = failure_threshold
        self._cooldown = cooldown
        self._clock = clock
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._breakers: dict[str, CircuitBreaker] = {}
        self._buckets: dict[tuple[str, str], TokenBucket] = {}

    def breaker(self, provider: str) -> CircuitBreaker:
        found = self._breakers.get(provider)
        if found is None:
            found = self._breakers[provider] = CircuitBreaker(
                provider, failure_threshold=self._failure_threshold, cooldown=self._cooldown, clock=self._clock
            )
        return found

    def states(self) -> dict[str, str]:
        return {name: b.state for name, b in self._breakers.items()}

    def available(self, provider: str) -> bool:
        found = self._breakers.get(provider)
        return found is None or found.state != "open"

    def _bucket(self, provider: str, kind: str, per_minute: int) -> TokenBucket:
        found = self._buckets.get((provider, kind))
        if found is None:
            found = self._buckets[provider, kind] = TokenBucket(per_minute, clock=self._clock, sleep=self._sleep)
        return found

    async def _acquire(self, provider: str, tokens: int) -> float:
        """Wait for the provider's RPM and TPM budgets; RateLimitError if that would take too long."""
        max_wait = self.policy.bucket_max_wait
        rpm = self._bucket(provider, "rpm", self._rpm) if self._rpm else None
        waited = await rpm.acquire(1, max_wait=max_wait) if rpm else 0.0
        if self._tpm and tokens > 0:
            try:
                waited += await self._bucket(provider, "tpm", self._tpm).acquire(tokens, max_wait=max_wait)
            except BaseException:
                if rpm:
                    rpm.refund(1)  # no request goes out, so it must not count
                raise
        return waited

    async def call(
        self,
        candidates: Sequence[C],
        fn: Callable[[C], Awaitable[T]],
        *,
        tokens: int = 0,
        on_attempt: OnAttempt | None = None,
    ) -> tuple[T, C, list[Attempt]]:
        """`fn(candidate)` on the candidates in order until one succeeds (see the module rules)."""
        run = _Run(self, candidates, tokens, on_attempt)
        while (candidate := await run.next_try()) is not None:
            started = self._clock()
            try:
                result = await fn(candidate)
            except ProviderError as exc:
                await run.failed(candidate, exc, started)
                continue
            except BaseException:
                run.abandon(candidate)  # cancelled or a bug: not the provider's fault either way
                raise
            await run.succeeded(candidate, started)
            return result, candidate, run.attempts
        raise run.exhausted()

    async def stream(
        self,
        candidates: Sequence[C],
        open_stream: Callable[[C], AsyncIterator[Chunk]],
        *,
        tokens: int = 0,
        on_attempt: OnAttempt | None = None,
    ) -> AsyncGenerator[tuple[C, Chunk], None]:
        """The chunks of the first candidate that answers, each with that candidate.

        Chunks are passed on as they come: buffering until a stream is known to be complete
        would cost the user the streaming. Close this iterator (or cancel its consumer) and the
        provider's stream is closed with it.
        """
        run = _Run(self, candidates, tokens, on_attempt)
        while (candidate := await run.next_try()) is not None:
            started = self._clock()
            parts: list[str] = []
            error: ProviderError | None = None
            try:
                upstream = open_stream(candidate)
                async with _closing(upstream):
                    while True:
                        try:
                            chunk = await anext(upstream)
                        except StopAsyncIteration:
                            break
                        except ProviderError as exc:
                            error = exc
                            break
                        if chunk.text:
                            parts.append(chunk.text)
                        yield candidate, chunk
            except BaseException:
                # The consumer closed us (GeneratorExit at the yield), was cancelled, or a bug:
                # the upstream is closed by now; the breaker's probe slot must not leak.
                run.abandon(candidate)
                raise
            if error is None:
                await run.succeeded(candidate, started)
                return
            if parts:
                cut = await run.incomplete(candidate, error, started, "".join(parts))
                raise cut from error
            await run.failed(candidate, error, started)
        raise run.exhausted()


def _closing(stream: AsyncIterator[Chunk]) -> AbstractAsyncContextManager[object]:
    # Provider streams are async generators; a plain iterator has nothing to close.
    if isinstance(stream, AsyncGenerator):
        return aclosing(stream)
    return nullcontext(stream)


class _Run(Generic[C]):
    """The bookkeeping of one request through the candidates, shared by `call` and `stream`."""

    def __init__(self, owner: Resilience, candidates: Sequence[C], tokens: int, on_attempt: OnAttempt | None):
        self._owner, self._policy, self._candidates = owner, owner.policy, candidates
        self._tokens, self._on_attempt = tokens, on_attempt
        self._index = -1
        self._current: C | None = None  # None: move on to the next candidate
        self._tries = 0  # of the current candidate
        self._delay = 0.0  # backoff owed before its next try
        self._waited = 0.0  # before the try under way, for its Attempt
        self._blocked: dict[str, ProviderError] = {}  # provider -> its AuthenticationError
        self._floor = 0  # context windows known to be too small, since this error:
        self._floor_error: ProviderError | None = None
        # Clock times when something may work again: per candidate (its last rate limit) and per circuit.
        self._retry_at: dict[str, float] = {}
        self.errors: dict[str, ProviderError] = {}
        self.attempts: list[Attempt] = []

    async def next_try(self) -> C | None:
        """The candidate to try next, after any waits it needs; None when none is left."""
        owner = self._owner
        while True:
            if self._current is None:
                self._index += 1
                if self._index >= len(self._candidates):
                    return None
                c = self._candidates[self._index]
                skip = self._blocked.get(c.provider) or (self._floor_error if c.context_window <= self._floor else None)
                if skip is not None:  # recorded so the final error names every candidate
                    self.errors[_key(c)] = skip
                    continue
                self._current, self._tries, self._delay = c, 0, 0.0
            c = self._current
            waited, self._delay = self._delay, 0.0
            if waited:
                await owner._sleep(waited)
            breaker = owner.breaker(c.provider)
            if not breaker.allow():
                self._current = None
                if (retry_at := breaker.retry_at) is not None:
                    self._retry_at[f"circuit {c.provider}"] = retry_at
                wait = None if retry_at is None else retry_at - owner._clock()
                # The failure that opened the circuit says more than the circuit itself.
                self.errors.setdefault(_key(c), CircuitOpen(c.provider, wait))
                continue
            try:
                waited += await owner._acquire(c.provider, self._tokens)
            except RateLimitError as exc:  # our own budget: the next provider has its own
                breaker.release()
                log.info("%s/%s: local rate limit, falling back (%.1fs)", c.provider, c.model, exc.retry_after)
                self._note(c, exc, owner._clock())
                self._current = None
                continue
            except BaseException:
                breaker.release()
                raise
            self._waited = waited
            return c

    def _note(self, c: C, error: ProviderError, when: float) -> None:
        self.errors[_key(c)] = error
        retry_after = getattr(error, "retry_after", None)
        if retry_after is not None:
            self._retry_at[_key(c)] = when + retry_after
        else:  # an older hint of this candidate no longer says when it will answer
            self._retry_at.pop(_key(c), None)

    async def _report(self, c: C, error: ProviderError | None, started: float) -> float:
        attempt = Attempt(c.provider, c.model, error, self._waited, started, self._owner._clock())
        self.attempts.append(attempt)
        if self._on_attempt is not None and inspect.isawaitable(result := self._on_attempt(attempt)):
            await result
        return attempt.ended

    async def succeeded(self, c: C, started: float) -> None:
        self._owner.breaker(c.provider).record_success()
        await self._report(c, None, started)

    def abandon(self, c: C) -> None:
        self._owner.breaker(c.provider).release()

    async def incomplete(self, c: C, error: ProviderError, started: float, text: str) -> IncompleteStream:
        cut = IncompleteStream(text, provider=c.provider, model=c.model, cause=error)
        breaker = self._owner.breaker(c.provider)
        if error.retryable:
            breaker.record_failure()
        else:
            breaker.release()
        await self._report(c, cut, started)
        return cut

    async def failed(self, c: C, error: ProviderError, started: float) -> None:
        """Record a failed try and decide: raise, retry this candidate (after a wait), or move on."""
        self._note(c, error, await self._report(c, error, started))
        breaker = self._owner.breaker(c.provider)
        self._current = None  # unless a retry is decided below
        if not error.retryable:
            breaker.release()  # not an outage: the breaker stays as it was
            if isinstance(error, AuthenticationError):
                self._blocked[c.provider] = error
            elif isinstance(error, ContextWindowError):
                self._floor, self._floor_error = max(self._floor, c.context_window), error
            else:
                raise error
            return
        breaker.record_failure()
        self._tries += 1
        if (retry_at := breaker.retry_at) is not None:  # the circuit is open: no point retrying here
            self._retry_at[f"circuit {c.provider}"] = retry_at
            return
        retry_after = getattr(error, "retry_after", None)
        if self._tries >= self._policy.max_attempts:
            return
        if retry_after is not None and retry_after > self._policy.retry_after_cap:
            log.info(
                "%s/%s: %s, Retry-After %.1fs too long, falling back", c.provider, c.model, _name(error), retry_after
            )
            return
        delay = retry_after if retry_after is not None else self._policy.backoff(self._tries - 1, self._owner._rng)
        log.info("%s/%s: %s, retry %d in %.2fs", c.provider, c.model, _name(error), self._tries, delay)
        self._current, self._delay = c, delay

    def exhausted(self) -> AllProvidersUnavailable:
        now = self._owner._clock()
        retry_after = max(0.0, min(self._retry_at.values()) - now) if self._retry_at else None
        return AllProvidersUnavailable(dict(self.errors), retry_after=retry_after)


def _key(c: CandidateLike) -> str:
    return f"{c.provider}/{c.model}"


def _name(error: BaseException) -> str:
    return type(error).__name__
