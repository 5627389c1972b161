"""The call engine: route → cache → budget → resilient provider call → ledger.

Every model call of every verb goes through here, once: this is where a request is
priced before it is made (a reservation against the monthly budget), where each try is
written to the ledger with its routing reason, and where the answer is cached.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from contextlib import aclosing
from dataclasses import dataclass, field
from statistics import median
from typing import TYPE_CHECKING

from .errors import AllProvidersUnavailable, ProviderError, ProviderTimeout
from .ledger import CallRecord
from .resilience import IncompleteStream
from .routing import Candidate, RouteRequest, RoutingDecision
from .types import Chunk, Request, Response, Usage

if TYPE_CHECKING:
    from .cache import ResponseCache
    from .ledger import BudgetAlert, Ledger
    from .providers.registry import Providers
    from .resilience import Resilience
    from .routing import Router
    from .tokens import TokenCounter

log = logging.getLogger(__name__)
# Answers cut by the length limit are not worth caching: asked again, they would stay cut.
_TRUNCATED = frozenset({"length", "max_tokens", "MAX_TOKENS"})


@dataclass(slots=True)
class CallContext:
    """Who asks and why: what the ledger row says besides the numbers."""

    task: str
    front_end: str = "core"
    kind: str | None = None
    profile: str | None = None
    use_cache: bool = True


@dataclass(slots=True)
class CallResult:
    response: Response
    candidate: Candidate
    reason: str
    cached: bool = False
    stale: bool = False


@dataclass(slots=True)
class StreamState:
    """What a stream has shown so far; read by the front ends after (or during) iteration."""

    reason: str = ""
    model: str | None = None
    provider: str | None = None
    usage: Usage | None = None
    cached: bool = False
    incomplete: bool = False
    partial_text: str = ""
    ttft_ms: float | None = None
    finish_reason: str | None = None
    parts: list[str] = field(default_factory=list)


class Engine:
    def __init__(
        self,
        *,
        router: Router,
        providers: Providers,
        resilience: Resilience,
        ledger: Ledger,
        cache: ResponseCache,
        counter: TokenCounter,
        on_alert: Callable[[BudgetAlert], None],
    ):
        self.router = router
        self.providers = providers
        self.resilience = resilience
        self.ledger = ledger
        self.cache = cache
        self.counter = counter
        self._on_alert = on_alert
        self._latencies: dict[str, deque[float]] = {}
        self._samples: dict[str, int] = {}
        self.remaining_budget: float | None = None

    # -- routing helpers ----------------------------------------------------------------

    def route(self, req: RouteRequest) -> RoutingDecision:
        return self.router.route(req)

    def prompt_tokens(self, request: Request) -> int:
        pairs = [(m.role, m.content) for m in request.messages]
        if request.system:
            pairs.insert(0, ("system", request.system))
        return self.counter.count_messages(pairs)

    # -- one answer ----------------------------------------------------------------------

    async def complete(
        self, decision: RoutingDecision, request: Request, ctx: CallContext, *, prompt_tokens: int | None = None
    ) -> CallResult:
        top = decision.candidates[0]
        key = ""
        if ctx.use_cache:
            key = self._key(request, top)
            hit = await self._cached(key, top, decision, ctx)
            if hit is not None:
                return CallResult(hit, top, decision.reason, cached=True)
        if prompt_tokens is None:
            prompt_tokens = self.prompt_tokens(request)

        async def attempt(candidate: Candidate) -> Response:
            return await self._attempt(candidate, request, prompt_tokens, decision.reason, ctx)

        try:
            response, used, _attempts = await self.resilience.call(
                decision.candidates, attempt, tokens=prompt_tokens + request.max_tokens
            )
        except AllProvidersUnavailable:
            stale = await self._cached(key, top, decision, ctx, stale=True) if ctx.use_cache else None
            if stale is None:
                raise
            return CallResult(stale, top, decision.reason + "; every provider down: stale cache", True, True)
        if ctx.use_cache and response.finish_reason not in _TRUNCATED:
            await self.cache.put(self._key(request, used), response)
            if used is not top:
                await self.cache.put(key, response)
        reason = decision.reason if used is top else f"{decision.reason}; answered by {used.id} after fallback"
        return CallResult(response, used, reason)

    async def call_once(
        self, candidate: Candidate, request: Request, ctx: CallContext, *, reason: str, timeout: float | None = None
    ) -> Response:
        """One try at one model, no routing, retry or cache (a provider test): still priced
        against the budget and written to the ledger like every other call."""
        return await self._attempt(candidate, request, self.prompt_tokens(request), reason, ctx, timeout=timeout)

    async def _attempt(
        self,
        candidate: Candidate,
        request: Request,
        prompt_tokens: int,
        reason: str,
        ctx: CallContext,
        *,
        timeout: float | None = None,
    ) -> Response:
        wire = request.model_copy(update={"model": candidate.model})
        reservation = await self.ledger.reserve(self._worst_case(candidate, prompt_tokens, request))
        started = time.perf_counter()
        try:
            answer = self.providers.get(candidate.provider).complete(wire)
            if timeout is None:  # the usual path: no timer to arm and disarm per call
                response = await answer
            else:
                async with asyncio.timeout(timeout):
                    response = await answer
        except TimeoutError:
            within = f" within {timeout:g}s" if timeout is not None else ""
            error = ProviderTimeout(f"{candidate.provider} did not answer{within}", provider=candidate.provider)
            await self._settle(reservation, candidate, reason, ctx, started, None, "error:ProviderTimeout")
            raise error from None
        except ProviderError as exc:
            await self._settle(reservation, candidate, reason, ctx, started, None, f"error:{type(exc).__name__}")
            raise
        except BaseException:
            await self.ledger.release(reservation)
            raise
        await self._settle(reservation, candidate, reason, ctx, started, response.usage, "ok")
        return response

    # -- a streamed answer ---------------------------------------------------------------

    async def stream(
        self, decision: RoutingDecision, request: Request, ctx: CallContext, state: StreamState
    ) -> AsyncIterator[Chunk]:
        top = decision.candidates[0]
        state.reason = decision.reason
        key = ""
        if ctx.use_cache:
            key = self._key(request, top)
            hit = await self._cached(key, top, decision, ctx)
            if hit is not None:
                state.model, state.provider, state.cached = top.id, top.provider, True
                state.usage, state.finish_reason = hit.usage, hit.finish_reason
                state.parts.append(hit.text)
                yield Chunk(text=hit.text)
                yield Chunk(usage=hit.usage, finish_reason=hit.finish_reason)
                return
        prompt_tokens = self.prompt_tokens(request)

        def open_stream(candidate: Candidate) -> AsyncIterator[Chunk]:
            return self._attempt_stream(candidate, request, prompt_tokens, decision, ctx, state)

        used: Candidate | None = None
        try:
            async with aclosing(
                self.resilience.stream(decision.candidates, open_stream, tokens=prompt_tokens + request.max_tokens)
            ) as chunks:
                async for candidate, chunk in chunks:
                    used = candidate
                    if chunk.text:
                        state.parts.append(chunk.text)
                    if chunk.usage is not None:
                        state.usage = chunk.usage
                        state.finish_reason = chunk.finish_reason
                    yield chunk
        except IncompleteStream as exc:
            state.incomplete = True
            state.partial_text = exc.partial_text
            raise
        if used is not None and state.usage is not None and ctx.use_cache and state.finish_reason not in _TRUNCATED:
            text = "".join(state.parts)
            response = Response(
                model=used.model,
                provider=used.provider,
                text=text,
                usage=state.usage,
                finish_reason=state.finish_reason,
            )
            await self.cache.put(key, response)

    async def _attempt_stream(
        self,
        candidate: Candidate,
        request: Request,
        prompt_tokens: int,
        decision: RoutingDecision,
        ctx: CallContext,
        state: StreamState,
    ) -> AsyncIterator[Chunk]:
        wire = request.model_copy(update={"model": candidate.model})
        provider = self.providers.get(candidate.provider)
        reservation = await self.ledger.reserve(self._worst_case(candidate, prompt_tokens, request))
        started = time.perf_counter()
        ttft: float | None = None
        text: list[str] = []
        usage: Usage | None = None
        outcome = "error:Cancelled"
        try:
            async with aclosing(provider.stream(wire)) as chunks:
                async for chunk in chunks:
                    if chunk.text and ttft is None:
                        ttft = (time.perf_counter() - started) * 1000
                        state.ttft_ms = ttft
                        state.model, state.provider = candidate.id, candidate.provider
                    if chunk.text:
                        text.append(chunk.text)
                    if chunk.usage is not None:
                        usage = chunk.usage
                    yield chunk
            outcome = "ok"
        except ProviderError as exc:
            outcome = "incomplete" if text else f"error:{type(exc).__name__}"
            raise
        finally:
            if usage is None and text:
                # A cut stream is still billed for what was produced: estimate it.
                usage = provider.usage(wire, "".join(text), prompt_tokens, None)
            await self._settle(reservation, candidate, decision.reason, ctx, started, usage, outcome, ttft)

    # -- bookkeeping ---------------------------------------------------------------------

    @staticmethod
    def _worst_case(candidate: Candidate, prompt_tokens: int, request: Request) -> float:
        """What to reserve: the answer at its longest, and our prompt count with a margin,
        since other tokenizers than cl100k count up to a fifth more."""
        return candidate.info.cost(int(prompt_tokens * 1.25) + 16, request.max_tokens)

    async def _settle(
        self,
        reservation: object,
        candidate: Candidate,
        reason: str,
        ctx: CallContext,
        started: float,
        usage: Usage | None,
        outcome: str,
        ttft_ms: float | None = None,
    ) -> None:
        latency = (time.perf_counter() - started) * 1000
        if outcome == "ok":
            window = self._latencies.setdefault(candidate.id, deque(maxlen=50))
            window.append(latency)
            seen = self._samples[candidate.id] = self._samples.get(candidate.id, 0) + 1
            # Every tenth call is often enough for routing, and keeps its plans reusable.
            if seen % 10 == 5:
                self.router.set_observed_latency(candidate.id, median(window))
        record = CallRecord(
            front_end=ctx.front_end,
            task=ctx.task,
            kind=ctx.kind,
            profile=ctx.profile,
            provider=candidate.provider,
            model=candidate.id,
            input_tokens=usage.input_tokens if usage else 0,
            output_tokens=usage.output_tokens if usage else 0,
            cost_usd=usage.cost_usd if usage else 0.0,
            latency_ms=latency,
            ttft_ms=ttft_ms,
            outcome=outcome,
            reason=reason,
        )
        alerts = await self.ledger.settle(reservation, record)  # type: ignore[arg-type]
        await self._after_spend(alerts)

    def _key(self, request: Request, candidate: Candidate) -> str:
        return self.cache.key(request.model_copy(update={"model": candidate.model}), provider=candidate.provider)

    async def _cached(
        self, key: str, top: Candidate, decision: RoutingDecision, ctx: CallContext, *, stale: bool = False
    ) -> Response | None:
        """A cached answer (a stale one only when asked), logged as a free call and returned
        with zero cost: its tokens were paid for once, when it was stored."""
        hit = await self.cache.get(key, allow_stale=stale)
        if hit is None:
            return None
        response = hit.response
        await self._record_hit(top, decision, ctx, response, outcome="stale" if stale else "ok")
        free = Usage(input_tokens=response.usage.input_tokens, output_tokens=response.usage.output_tokens)
        return response.model_copy(update={"usage": free})

    async def _record_hit(
        self,
        candidate: Candidate,
        decision: RoutingDecision,
        ctx: CallContext,
        response: Response,
        outcome: str = "ok",
    ) -> None:
        record = CallRecord(
            front_end=ctx.front_end,
            task=ctx.task,
            kind=ctx.kind,
            profile=ctx.profile,
            provider=response.provider or candidate.provider,
            model=candidate.id,
            input_tokens=response.usage.input_tokens,
            output_tokens=response.usage.output_tokens,
            cost_usd=0.0,
            cache_hit=True,
            outcome=outcome,
            reason=decision.reason,
        )
        await self._after_spend(await self.ledger.record(record))

    async def _after_spend(self, alerts: list[BudgetAlert]) -> None:
        for alert in alerts:
            self._on_alert(alert)
        if self.ledger.monthly_budget is not None:
            state = await self.ledger.budget_state()
            self.remaining_budget = state.remaining_usd
