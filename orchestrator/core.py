"""The Orchestrator facade: the one object every front end calls.

Built once at start-up from `Settings` (`await Orchestrator.create(settings)`), it owns
the catalog, the providers' connection pools, the router, the resilience state, the
cache and the ledger. Its verbs are the whole contract with the front ends.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from contextlib import AsyncExitStack, aclosing
from pathlib import Path
from typing import Any, Self, TypeVar

from . import analysis, prompts
from . import consensus as _consensus
from .cache import ResponseCache
from .catalog import Catalog, ModelInfo
from .context import build_context
from .conversations import ConversationStore
from .engine import CallContext, Engine, StreamState
from .errors import InvalidInputError, OrchestratorError
from .ledger import BudgetAlert, BudgetState, Ledger, UsageRow
from .providers.builtin import BuiltinAnalyzer
from .providers.registry import Providers
from .resilience import Resilience, RetryPolicy
from .results import AnalysisResult, ChatStream, Completion, ConsensusAnswer, EditResult, TextResult, sum_usage
from .routing import Router, RouteRequest, Task
from .settings import Settings
from .tokens import TokenCounter
from .types import AnalysisKind, Capability, Chunk, Document, Finding, Message, Profile, Range, Request

log = logging.getLogger(__name__)
T = TypeVar("T")
_CHAT = frozenset({Capability.CHAT})


class Orchestrator:
    def __init__(
        self,
        settings: Settings,
        *,
        catalog: Catalog,
        ledger: Ledger,
        cache: ResponseCache,
        conversations: ConversationStore,
        front_end: str = "core",
    ):
        self.settings = settings
        self.conversations = conversations
        self.catalog = catalog
        self.front_end = front_end
        self.counter = TokenCounter()
        self.ledger = ledger
        self.cache = cache
        res = settings.resilience
        self.resilience = Resilience(
            RetryPolicy(
                max_attempts=res.max_attempts,
                base_delay=res.base_delay,
                max_delay=res.max_delay,
                retry_after_cap=res.retry_after_cap,
            ),
            requests_per_minute=settings.limits.requests_per_minute,
            tokens_per_minute=settings.limits.tokens_per_minute,
            failure_threshold=res.failure_threshold,
            cooldown=res.cooldown,
        )
        self.providers = Providers(settings, catalog=catalog, counter=self.counter)
        self.router = Router(
            settings,
            catalog,
            available=self.resilience.available,
            remaining_budget=lambda: self.engine.remaining_budget,
        )
        self.engine = Engine(
            router=self.router,
            providers=self.providers,
            resilience=self.resilience,
            ledger=ledger,
            cache=cache,
            counter=self.counter,
            on_alert=self._alert,
        )
        self.builtin = BuiltinAnalyzer(settings.analysis)
        self._listeners: list[Callable[[BudgetAlert], None]] = []

    @classmethod
    async def create(
        cls, settings: Settings, *, front_end: str = "core", data_dir: str | Path | None = None
    ) -> Orchestrator:
        base = Path(data_dir or settings.data_dir)
        catalog = Catalog.load(settings.models, source=settings.source_of("models"))
        async with AsyncExitStack() as opened:
            ledger = await Ledger.open(base / "ledger.db", monthly_budget=settings.budget.monthly_usd)
            opened.push_async_callback(ledger.close)
            cache = await ResponseCache.open(
                base / "cache.db",
                ttl_seconds=settings.cache.ttl_seconds,
                max_entries=settings.cache.max_entries if settings.cache.enabled else 0,
            )
            opened.push_async_callback(cache.close)
            conversations = await ConversationStore.open(base / "conversations.db")
            opened.push_async_callback(conversations.close)
            orch = cls(
                settings, catalog=catalog, ledger=ledger, cache=cache, conversations=conversations, front_end=front_end
            )
            opened.pop_all()  # opened fine: from here on, close() owns them
        await orch.engine._after_spend([])
        return orch

    async def close(self) -> None:
        await self.providers.close()
        await self.cache.close()
        await self.conversations.close()
        await self.ledger.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.close()

    # -- events --------------------------------------------------------------------------

    def add_listener(self, listener: Callable[[BudgetAlert], None]) -> None:
        """Budget alerts (50/80/95/100 %) as they happen, for a front end to show."""
        self._listeners.append(listener)

    def _alert(self, alert: BudgetAlert) -> None:
        log.warning("%s", alert.message)
        for listener in list(self._listeners):
            try:
                listener(alert)
            except Exception:  # a broken listener must not break the call that spent
                log.exception("budget alert listener failed")

    # -- helpers -------------------------------------------------------------------------

    def _ctx(
        self,
        task: str,
        profile: Profile,
        *,
        kind: AnalysisKind | None = None,
        use_cache: bool = True,
        front_end: str | None = None,
    ) -> CallContext:
        return CallContext(
            task=task,
            front_end=front_end or self.front_end,
            kind=kind.value if kind else None,
            profile=profile.value,
            use_cache=use_cache,
        )

    def _profile(self, profile: Profile | str | None) -> Profile:
        if profile is None:
            return self.settings.routing.profile
        try:
            return Profile(profile)
        except ValueError:
            valid = ", ".join(p.value for p in Profile)
            raise InvalidInputError(f"unknown profile {profile!r}; valid profiles: {valid}") from None

    def _context(self, doc: Document, selection: Range | None, budget: int) -> Any:
        return build_context(doc, selection, counter=self.counter, max_tokens=budget)

    async def ask(
        self,
        task: Task,
        profile: Profile,
        system: str,
        user: str,
        *,
        kind: AnalysisKind | None = None,
        max_tokens: int = 2048,
        json_mode: bool = False,
        model: str | None = None,
        use_cache: bool = True,
        code_lines: int = 0,
        front_end: str | None = None,
    ) -> TextResult:
        """One answer to a system and user prompt, routed for `task`: what the other verbs build on."""
        request = Request(
            model="",
            system=system,
            messages=(Message(role="user", content=user),),
            max_tokens=max_tokens,
            json_mode=json_mode,
            temperature=0.2,
        )
        prompt_tokens = self.engine.prompt_tokens(request)
        decision = self.engine.route(
            RouteRequest(
                task=task,
                profile=profile,
                kind=kind,
                prompt_tokens=prompt_tokens,
                max_output=max_tokens,
                code_lines=code_lines,
                model=model,
                capabilities=_CHAT,
            )
        )
        result = await self.engine.complete(
            decision,
            request,
            self._ctx(task.value, profile, kind=kind, use_cache=use_cache, front_end=front_end),
            prompt_tokens=prompt_tokens,
        )
        return TextResult(
            text=result.response.text,
            model=result.candidate.id,
            usage=result.response.usage,
            reason=result.reason,
            cached=result.cached,
        )

    # -- verbs ---------------------------------------------------------------------------

    async def analyze(
        self,
        doc: Document,
        selection: Range | None = None,
        kinds: Sequence[AnalysisKind | str] | None = None,
        profile: Profile | str | None = None,
        *,
        ai: bool = True,
        consensus: bool = False,
        use_cache: bool = True,
        builtin_findings: Sequence[Finding] | None = None,
        front_end: str | None = None,
    ) -> AnalysisResult:
        """Built-in findings merged with AI findings (one request per model the kinds route to).

        A front end that already has this text's built-in findings (a language server keeps
        them per document) passes them as `builtin_findings` instead of paying for a rerun.
        """
        wanted = _kinds(kinds or self.settings.analysis.kinds)
        prof = self._profile(profile)
        if builtin_findings is None:
            report = await self.builtin.analyze([doc], wanted)
            found, notes = report.findings, list(report.notes)
        else:
            found, notes = [f for f in builtin_findings if f.kind in wanted], []
        builtin = [f for f in found if selection is None or _within(f.range, selection)]
        if not ai or not self.settings.configured_providers():
            if ai:
                notes.append("AI analysis skipped: no provider configured")
            return AnalysisResult(findings=builtin, notes=notes)
        ctx = self._context(doc, selection, 12_000)
        system_user = {k: analysis.analysis_prompt(doc, ctx, [k]) for k in wanted}
        if consensus:
            return await _consensus.analyze(self, doc, wanted, prof, ctx, builtin, notes, use_cache, front_end)
        # Kinds that route to the same model share one request.
        groups: dict[str, list[AnalysisKind]] = {}
        for kind in wanted:
            system, user = system_user[kind]
            top = self.engine.route(
                RouteRequest(
                    task=Task.ANALYSIS,
                    profile=prof,
                    kind=kind,
                    prompt_tokens=self.counter.count(system + user),
                    max_output=4096,
                    code_lines=len(ctx.lines),
                )
            ).candidates[0]
            groups.setdefault(top.id, []).append(kind)

        async def run(group: list[AnalysisKind]) -> TextResult:
            system, user = analysis.analysis_prompt(doc, ctx, group)
            return await self.ask(
                Task.ANALYSIS,
                prof,
                system,
                user,
                kind=group[0],
                max_tokens=4096,
                json_mode=True,
                use_cache=use_cache,
                code_lines=len(ctx.lines),
                front_end=front_end,
            )

        results = await asyncio.gather(*(run(g) for g in groups.values()), return_exceptions=True)
        ai_findings: list[Finding] = []
        models, usages, reasons = [], [], []
        for group, result in zip(groups.values(), results, strict=True):
            if isinstance(result, BaseException):
                if not isinstance(result, OrchestratorError):
                    raise result
                notes.append(f"AI analysis for {', '.join(k.value for k in group)} failed: {result}")
                continue
            ai_findings += analysis.parse_findings(result.text, doc, group, source=f"ai/{result.model}")
            models.append(result.model)
            usages.append(result.usage)
            reasons.append(result.reason)
        if selection is not None:
            ai_findings = [f for f in ai_findings if _within(f.range, selection)]
        return AnalysisResult(
            findings=analysis.merge_with_builtin(builtin, ai_findings),
            models=models,
            usage=sum_usage(usages),
            reason="; ".join(reasons),
            notes=notes,
        )

    async def chat(
        self,
        messages: Sequence[Message],
        *,
        document: Document | None = None,
        selection: Range | None = None,
        profile: Profile | str | None = None,
        model: str | None = None,
        max_tokens: int = 2048,
        use_cache: bool = True,
        conversation_id: str | None = None,
        system: str | None = None,
        temperature: float | None = None,
        stop: Sequence[str] = (),
        front_end: str | None = None,
    ) -> ChatStream:
        """Start streaming an answer; iterate the result for chunks.

        Routing happens here, so a configuration error raises before any chunk. With a
        `conversation_id`, its history comes first and, once the answer is complete, the
        new user message and the answer are added to it.
        """
        if not messages or messages[-1].role != "user":
            raise InvalidInputError("chat needs a conversation ending with a user message")
        prof = self._profile(profile)
        history = (await self.conversations.get(conversation_id)).history() if conversation_id else []
        msgs = list(messages)
        asked = msgs[-1]
        if document is not None:
            ctx = self._context(document, selection, 24_000)
            msgs[-1] = Message(role="user", content=prompts.with_context(asked.content, document, ctx))
        # system=None: our editor prompt; "" (an API client bringing its own): none.
        request = Request(
            model="",
            system=prompts.CHAT_SYSTEM if system is None else (system or None),
            messages=(*history, *msgs),
            max_tokens=max_tokens,
            temperature=temperature,
            stop=tuple(stop),
        )
        decision = self.engine.route(
            RouteRequest(
                task=Task.CHAT,
                profile=prof,
                model=model,
                prompt_tokens=self.engine.prompt_tokens(request),
                max_output=max_tokens,
            )
        )
        state = StreamState(reason=decision.reason)
        chunks = self.engine.stream(
            decision, request, self._ctx("chat", prof, use_cache=use_cache, front_end=front_end), state
        )
        if conversation_id:
            chunks = self._remember(conversation_id, asked, chunks, state)
        return ChatStream(chunks, state)

    async def _remember(
        self, conversation_id: str, asked: Message, chunks: AsyncIterator[Chunk], state: StreamState
    ) -> AsyncIterator[Chunk]:
        async with aclosing(chunks) as stream:  # type: ignore[type-var]
            async for chunk in stream:
                yield chunk
        # Only a complete answer joins the history: a cut one would mislead the next turn.
        answer = Message(role="assistant", content="".join(state.parts))
        await self.conversations.append(conversation_id, [asked, answer], model=state.model)

    async def complete(
        self,
        prefix: str,
        suffix: str = "",
        *,
        document: Document | None = None,
        profile: Profile | str | None = Profile.SPEED,
        max_tokens: int = 128,
        use_cache: bool = True,
        front_end: str | None = None,
    ) -> Completion:
        """Fill in the middle: the text to insert at the cursor (never repeating the suffix)."""
        prof = self._profile(profile)
        budget = 3000
        prefix_t = self.counter.trim_to_budget(prefix, budget * 3 // 4, keep="tail")
        suffix_t = self.counter.trim_to_budget(suffix, budget // 4, keep="head")
        language = document.language if document else "plaintext"
        result = await self.ask(
            Task.COMPLETION,
            prof,
            prompts.FIM_SYSTEM,
            prompts.fim_prompt(prefix_t, suffix_t, language),
            max_tokens=max_tokens,
            use_cache=use_cache,
            front_end=front_end,
        )
        return Completion(**{**result.model_dump(), "text": prompts.clean_completion(result.text, suffix)})

    async def explain(
        self,
        doc: Document,
        selection: Range | None = None,
        *,
        profile: Profile | str | None = None,
        front_end: str | None = None,
    ) -> TextResult:
        ctx = self._context(doc, selection, 16_000)
        return await self.ask(
            Task.EXPLANATION,
            self._profile(profile),
            prompts.EXPLAIN_SYSTEM,
            prompts.with_context("Explain the marked code.", doc, ctx),
            code_lines=len(ctx.lines),
            front_end=front_end,
        )

    async def fix(
        self, doc: Document, finding: Finding, *, profile: Profile | str | None = None, front_end: str | None = None
    ) -> EditResult:
        """The finding's own safe fix when it has one; otherwise a model's rewrite of its lines."""
        if finding.fix is not None:
            return EditResult(edits=list(finding.fix.edits), explanation=finding.fix.description)
        instruction = prompts.fix_instruction(finding)
        return await self._edit(
            Task.FIX, doc, finding.range, instruction, profile, kind=finding.kind, front_end=front_end
        )

    async def refactor(
        self,
        doc: Document,
        selection: Range,
        instruction: str | None = None,
        *,
        profile: Profile | str | None = None,
        front_end: str | None = None,
    ) -> EditResult:
        text = instruction or "Refactor the marked code for clarity and maintainability, keeping its behaviour."
        return await self._edit(Task.REFACTORING, doc, selection, text, profile, front_end=front_end)

    async def _edit(
        self,
        task: Task,
        doc: Document,
        region: Range,
        instruction: str,
        profile: Profile | str | None,
        *,
        kind: AnalysisKind | None = None,
        front_end: str | None = None,
    ) -> EditResult:
        start, end = prompts.whole_lines(doc, region)
        ctx = self._context(doc, Range.lines(start, end, 1), 16_000)
        result = await self.ask(
            task,
            self._profile(profile),
            prompts.EDIT_SYSTEM,
            prompts.with_context(instruction, doc, ctx),
            kind=kind,
            max_tokens=4096,
            json_mode=True,
            code_lines=end - start + 1,
            front_end=front_end,
        )
        parsed = prompts.parse_edit(result.text)
        if parsed is None:
            raise InvalidInputError(f"{result.model} did not return a usable edit; nothing was changed")
        replacement, explanation = parsed
        edit = prompts.line_edit(doc, start, end, replacement)
        return EditResult(
            edits=[edit], explanation=explanation, model=result.model, usage=result.usage, reason=result.reason
        )

    async def generate_tests(
        self,
        doc: Document,
        selection: Range | None = None,
        *,
        profile: Profile | str | None = None,
        front_end: str | None = None,
    ) -> TextResult:
        ctx = self._context(doc, selection, 16_000)
        module = Path(doc.path).stem
        framework = "pytest" if doc.language == "python" else "the usual framework for the language"
        result = await self.ask(
            Task.TESTING,
            self._profile(profile),
            prompts.TESTS_SYSTEM.format(framework=framework, module=module),
            prompts.with_context("Write tests for the marked code.", doc, ctx),
            max_tokens=4096,
            code_lines=len(ctx.lines),
            front_end=front_end,
        )
        code = prompts.code_block(result.text) or result.text
        return result.model_copy(update={"text": code})

    def models(self) -> list[tuple[ModelInfo, bool]]:
        """Every catalog model and whether it can be called now (key set, circuit closed)."""
        configured = set(self.settings.configured_providers())
        return [(m, m.provider in configured and self.resilience.available(m.provider)) for m in self.catalog]

    async def usage(self, period: str = "month", by: str = "provider") -> tuple[list[UsageRow], BudgetState]:
        return await self.ledger.summary(period=period, by=by), await self.ledger.budget_state()

    async def health(self) -> dict[str, Any]:
        configured = self.settings.configured_providers()
        return {
            "providers": {
                p: {"configured": p in configured, "circuit": self.resilience.breaker(p).state}
                for p in self.settings.routing.priority
            },
            "cache": await self.cache.stats(),
            "budget": (await self.ledger.budget_state()).model_dump(),
        }

    async def batch(
        self, jobs: Iterable[Callable[[], Awaitable[T]]], *, concurrency: int = 8
    ) -> list[T | BaseException]:
        """Run many verb calls with at most `concurrency` in flight; errors are returned, not raised."""
        if concurrency < 1:
            raise InvalidInputError("concurrency must be at least 1")
        gate = asyncio.Semaphore(concurrency)

        async def one(job: Callable[[], Awaitable[T]]) -> T:
            async with gate:
                return await job()

        return await asyncio.gather(*(one(j) for j in jobs), return_exceptions=True)

    async def consensus_chat(
        self,
        messages: Sequence[Message],
        *,
        profile: Profile | str | None = None,
        models: int | None = None,
        front_end: str | None = None,
    ) -> ConsensusAnswer:
        """Several models answer; their answers side by side, then a synthesis by the best of them."""
        return await _consensus.chat(self, messages, self._profile(profile), models, front_end)


def _kinds(kinds: Sequence[AnalysisKind | str]) -> list[AnalysisKind]:
    out = []
    for kind in kinds:
        try:
            out.append(AnalysisKind(kind))
        except ValueError:
            valid = ", ".join(k.value for k in AnalysisKind)
            raise InvalidInputError(f"unknown analysis kind {kind!r}; valid kinds: {valid}") from None
    return out


def _within(inner: Range, outer: Range) -> bool:
    return outer.start.line <= inner.start.line <= outer.end.line
