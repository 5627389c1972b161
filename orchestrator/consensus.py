"""Consensus: several models on one question, merged by agreement.

Analysis asks the top candidates the same question and keeps the findings at least two
of them agree on (same kind, overlapping lines), each with its agreement count; chat
shows the answers side by side with a synthesis by the best-ranked model.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from . import analysis, prompts
from .errors import OrchestratorError, ProviderNotConfigured
from .results import AnalysisResult, ConsensusAnswer, TextResult, sum_usage
from .routing import RouteRequest, Task
from .types import AnalysisKind, Document, Finding, Message, Profile, Request

if TYPE_CHECKING:
    from .core import Orchestrator

# The synthesis prompt asks for this first line; its absence just leaves agreement unknown.
_AGREEMENT = re.compile(r"agreement:\s*(high|medium|low)", re.IGNORECASE)


async def analyze(
    orch: Orchestrator,
    doc: Document,
    kinds: list[AnalysisKind],
    profile: Profile,
    ctx: Any,
    builtin: list[Finding],
    notes: list[str],
    use_cache: bool,
    front_end: str | None,
) -> AnalysisResult:
    system, user = analysis.analysis_prompt(doc, ctx, kinds)
    decision = orch.engine.route(
        RouteRequest(
            task=Task.ANALYSIS,
            profile=profile,
            kind=kinds[0],
            prompt_tokens=orch.counter.count(system + user),
            max_output=4096,
        )
    )
    chosen = decision.candidates[: orch.settings.routing.consensus_models]
    results = await asyncio.gather(
        *(
            orch.ask(
                Task.ANALYSIS,
                profile,
                system,
                user,
                kind=kinds[0],
                max_tokens=4096,
                json_mode=True,
                model=c.id,
                use_cache=use_cache,
                front_end=front_end,
            )
            for c in chosen
        ),
        return_exceptions=True,
    )
    per_model: dict[str, list[Finding]] = {}
    usages = []
    for candidate, result in zip(chosen, results, strict=True):
        if isinstance(result, BaseException):
            if not isinstance(result, OrchestratorError):
                raise result
            notes.append(f"{candidate.id} failed: {result}")
            continue
        per_model[result.model] = analysis.parse_findings(result.text, doc, kinds, source=f"ai/{result.model}")
        usages.append(result.usage)
    merged = analysis.merge_consensus(per_model)
    return AnalysisResult(
        findings=analysis.merge_with_builtin(builtin, merged),
        models=list(per_model),
        usage=sum_usage(usages),
        reason=f"consensus of {', '.join(per_model) or 'no model'}",
        notes=notes,
        consensus=True,
    )


async def chat(
    orch: Orchestrator,
    messages: Sequence[Message],
    prof: Profile,
    models: int | None,
    front_end: str | None,
) -> ConsensusAnswer:
    """Several models answer; their answers side by side, then a synthesis by the best of them."""
    request = Request(model="", system=prompts.CHAT_SYSTEM, messages=tuple(messages), max_tokens=2048)
    decision = orch.engine.route(
        RouteRequest(task=Task.CHAT, profile=prof, prompt_tokens=orch.engine.prompt_tokens(request))
    )
    chosen = decision.candidates[: models or orch.settings.routing.consensus_models]
    if not chosen:
        raise ProviderNotConfigured("no model available for consensus")
    question = messages[-1].content
    results = await asyncio.gather(
        *(orch.ask(Task.CHAT, prof, prompts.CHAT_SYSTEM, question, model=c.id, front_end=front_end) for c in chosen),
        return_exceptions=True,
    )
    answers = {c.id: r for c, r in zip(chosen, results, strict=True) if isinstance(r, TextResult)}
    if not answers:
        raise next(r for r in results if isinstance(r, BaseException))
    listing = "\n\n".join(f"## Answer from {m}\n{r.text}" for m, r in answers.items())
    synthesis = await orch.ask(
        Task.CHAT,
        prof,
        "You compare answers from several models to one question: say where they agree, where they differ, "
        "and give the best combined answer. Start with a line 'Agreement: high|medium|low'.",
        f"Question:\n{question}\n\n{listing}",
        model=chosen[0].id,
        front_end=front_end,
    )
    usage = sum_usage([r.usage for r in answers.values()] + [synthesis.usage])
    judged = _AGREEMENT.search(synthesis.text[:200])
    agreement = judged.group(1).lower() if judged else None
    return ConsensusAnswer(answers=answers, synthesis=synthesis, usage=usage, agreement=agreement)
