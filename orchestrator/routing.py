"""Routing: an ordered list of candidate models for a request, and the reason why.

Each model that passes the hard constraints (a key or local server, the priority list,
a closed circuit, a context window that fits, the capabilities, the cost limits) gets a
score from the profile's weights over quality, price and latency (observed latency when
the ledger has enough calls, the catalog hint before that), a bonus when the task's
preference table names it, and a shift toward price for simple requests. Ties rotate.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from itertools import count
from typing import NoReturn

from .catalog import Catalog, ModelInfo
from .errors import BudgetExceeded, ProviderNotConfigured
from .settings import PROVIDER_ALIASES, PROVIDERS, Settings
from .types import AnalysisKind, Capability, Profile


class Task(StrEnum):
    ANALYSIS = "analysis"
    CHAT = "chat"
    COMPLETION = "completion"
    EXPLANATION = "explanation"
    DOCUMENTATION = "documentation"
    CODE_GENERATION = "code_generation"
    REFACTORING = "refactoring"
    TESTING = "testing"
    FIX = "fix"


# Preferred models per analysis kind or task, best first. An entry may also be a provider
# name ("anthropic"): any of its models gets the bonus. Users override per key in
# [routing.preferences]. Chosen from what each family is known to do well: long careful
# reading for security and refactoring, speed for style and completion.
DEFAULT_PREFERENCES: dict[str, list[str]] = {
    "security": ["anthropic/claude-opus-5-5", "anthropic/claude-sonnet-5-5", "openai/gpt-6.2-sol"],
    "performance": ["openai/gpt-6.2-sol", "anthropic/claude-sonnet-5-5", "gemini/gemini-3.1-pro-preview"],
    "style": ["gemini/gemini-3.8-flash", "openai/gpt-6-luna", "anthropic/claude-haiku-5-5"],
    "refactoring": ["anthropic/claude-sonnet-5-5", "openai/gpt-6.2-sol", "gemini/gemini-3.1-pro-preview"],
    "testing": ["anthropic/claude-sonnet-5-5", "openai/gpt-6.1-terra", "gemini/gemini-3.8-flash"],
    "chat": ["anthropic/claude-sonnet-5-5", "openai/gpt-6.2-sol", "gemini/gemini-3.1-pro-preview"],
    "completion": ["ollama/qwen2.5-coder:1.5b", "gemini/gemini-3.5-flash-lite", "openai/gpt-6-luna"],
    "explanation": ["gemini/gemini-3.8-flash", "anthropic/claude-sonnet-5-5", "openai/gpt-6.1-terra"],
    "documentation": ["gemini/gemini-3.8-flash", "anthropic/claude-haiku-5-5", "openai/gpt-6.1-terra"],
    "code_generation": ["anthropic/claude-sonnet-5-5", "openai/gpt-6.2-sol", "gemini/gemini-3.1-pro-preview"],
    "fix": ["anthropic/claude-sonnet-5-5", "openai/gpt-6.2-sol", "gemini/gemini-3.8-flash"],
}

# (quality, price, latency, context) weights per profile.
PROFILE_WEIGHTS: dict[Profile, tuple[float, float, float, float]] = {
    Profile.QUALITY: (0.80, 0.05, 0.15, 0.0),
    Profile.BALANCED: (0.50, 0.25, 0.25, 0.0),
    Profile.SPEED: (0.20, 0.20, 0.60, 0.0),
    Profile.BUDGET: (0.20, 0.70, 0.10, 0.0),
    Profile.LONG_CONTEXT: (0.40, 0.20, 0.10, 0.30),
}
PREFERENCE_BONUS = (0.15, 0.10, 0.06)
_SIMPLE_TASKS = {Task.COMPLETION, Task.DOCUMENTATION, Task.EXPLANATION}
_HARD_KINDS = {AnalysisKind.SECURITY, AnalysisKind.REFACTORING}


@dataclass(frozen=True, slots=True)
class RouteRequest:
    task: Task
    profile: Profile = Profile.BALANCED
    kind: AnalysisKind | None = None
    prompt_tokens: int = 0
    max_output: int = 1024
    code_lines: int = 0
    capabilities: frozenset[Capability] = frozenset({Capability.CHAT})
    model: str | None = None  # a pin: this model first, the usual fallbacks after it


@dataclass(frozen=True, slots=True)
class Candidate:
    info: ModelInfo
    score: float

    @property
    def provider(self) -> str:
        return self.info.provider

    @property
    def model(self) -> str:
        return self.info.model

    @property
    def id(self) -> str:
        return self.info.id

    @property
    def context_window(self) -> int:
        return self.info.context_window


@dataclass(frozen=True, slots=True)
class RoutingDecision:
    candidates: tuple[Candidate, ...]
    reason: str
    complexity: str
    skipped: Mapping[str, str] = field(default_factory=dict)


def estimate_complexity(req: RouteRequest) -> str:
    """'simple', 'moderate' or 'complex' from sizes and the kind of task: cheap, no model."""
    hard = req.kind in _HARD_KINDS or req.task in (Task.CODE_GENERATION, Task.REFACTORING)
    if req.prompt_tokens > 8000 or req.code_lines > 300 or (hard and req.code_lines > 120):
        return "complex"
    easy = req.task in _SIMPLE_TASKS or req.kind is AnalysisKind.STYLE
    if not hard and (easy or req.code_lines <= 40) and req.prompt_tokens <= 1500:
        return "simple"
    return "moderate"


# scored candidates, demoted (circuit open) candidates, skipped ids with why, complexity, reason tail
_Plan = tuple[list[Candidate], list[Candidate], dict[str, str], str, str]


class Router:
    def __init__(
        self,
        settings: Settings,
        catalog: Catalog,
        *,
        available: Callable[[str], bool] = lambda _provider: True,
        observed_latency: Mapping[str, float] | None = None,
        remaining_budget: Callable[[], float | None] = lambda: None,
        preferences: Mapping[str, Sequence[str]] | None = None,
    ):
        self.settings = settings
        self.catalog = catalog
        self.available = available
        # model id → median latency in ms, kept fresh by the facade from the ledger
        self.observed_latency: dict[str, float] = dict(observed_latency or {})
        self.remaining_budget = remaining_budget
        user = {**settings.routing.preferences, **{k: list(v) for k, v in (preferences or {}).items()}}
        # A preference the user wrote down outweighs ours: it counts double.
        self._user_keys = set(user)
        self.preferences = {
            **DEFAULT_PREFERENCES,
            **settings.routing.preferences,
            **{k: list(v) for k, v in (preferences or {}).items()},
        }
        self._turns: dict[tuple[str, ...], count[int]] = {}
        self._memo: dict[tuple[object, ...], _Plan] = {}

    def route(self, req: RouteRequest) -> RoutingDecision:
        label = req.kind.value if req.kind else req.task.value
        remaining = self.remaining_budget()
        # The same request shape under the same conditions scores the same: reuse it (every
        # completion keystroke routes). Ties still rotate below, on every call.
        key = (req, tuple(self.available(p) for p in PROVIDERS), None if remaining is None else round(remaining, 5))
        plan = self._memo.get(key)
        if plan is None:
            plan = self._plan(req, label, remaining)
            if len(self._memo) >= 512:
                self._memo.clear()
            self._memo[key] = plan
        scored, demoted, skipped, complexity, skip_note = plan
        ordered = self._rotate_ties(scored) + demoted
        if req.model is not None:
            ordered = self._pin(req.model, ordered, skipped)
        if not self.settings.routing.auto_fallback:
            ordered = ordered[:1]
        if not ordered:
            _raise_nothing_left(label, skipped)
        top = ordered[0]
        notes = f"{req.profile.value} profile" + (", simple request" if complexity == "simple" else "")
        if req.model is not None:
            notes = "pinned"
        reason = f"{label} → {top.id} ({notes}){skip_note}"
        return RoutingDecision(candidates=tuple(ordered), reason=reason, complexity=complexity, skipped=skipped)

    def set_observed_latency(self, model_id: str, latency_ms: float) -> None:
        self.observed_latency[model_id] = latency_ms
        self._memo.clear()

    def invalidate(self) -> None:
        """Forget reused plans: call after the settings or the catalog changed."""
        self._memo.clear()

    def _plan(self, req: RouteRequest, label: str, remaining: float | None) -> _Plan:
        configured = set(self.settings.configured_providers())
        priority = self.settings.routing.priority
        skipped: dict[str, str] = {}
        eligible: list[ModelInfo] = []
        demoted: list[ModelInfo] = []
        max_cost = self.settings.routing.max_cost_per_request
        for info in self.catalog:
            provider = PROVIDER_ALIASES.get(info.provider, info.provider)
            why = None
            if provider not in configured:
                why = "no key" if provider != "ollama" else "local model disabled"
            elif provider not in priority:
                why = "not in AI_PROVIDER_PRIORITY"
            elif info.context_window < req.prompt_tokens + req.max_output:
                why = f"context {info.context_window:,} < {req.prompt_tokens + req.max_output:,} tokens"
            elif not _capable(info, req):
                why = f"lacks {'/'.join(sorted(req.capabilities))}"
            else:
                worst = info.cost(req.prompt_tokens, req.max_output)
                if max_cost is not None and worst > max_cost:
                    why = f"over max cost per request (${worst:.4f} > ${max_cost:.4f})"
                elif remaining is not None and worst > remaining:
                    why = f"over the remaining budget (${worst:.4f} > ${remaining:.4f})"
            if why:
                skipped[info.id] = why
            elif not self.available(info.provider):
                # Kept, last: the resilience loop skips it while open and, when every
                # provider is down, reports when its circuit will let a probe through.
                skipped[info.id] = "circuit open"
                demoted.append(info)
            else:
                eligible.append(info)
        complexity = estimate_complexity(req)
        if not eligible and not demoted and req.model is None:
            _raise_nothing_left(label, skipped)
        grouped = _group_skips(skipped, self.catalog)
        skip_note = ("; " + "; ".join(f"{name} skipped: {why}" for name, why in grouped)) if grouped else ""
        return (
            self._score(eligible, req, complexity, priority),
            self._score(demoted, req, complexity, priority),
            skipped,
            complexity,
            skip_note,
        )

    def _score(
        self, models: list[ModelInfo], req: RouteRequest, complexity: str, priority: list[str]
    ) -> list[Candidate]:
        if not models:
            return []
        wq, wp, wl, wc = PROFILE_WEIGHTS[req.profile]
        if self.settings.routing.cost_optimization and complexity == "simple":
            shift = min(0.2, wq)
            wq, wp = wq - shift, wp + shift
        elif complexity == "complex":
            wq, wp = wq + 0.1, max(0.0, wp - 0.1)
        expected_out = min(req.max_output, 800)
        costs = {m.id: m.cost(max(req.prompt_tokens, 200), expected_out) for m in models}
        top_cost = max(costs.values()) or 1.0
        latencies = {m.id: self.observed_latency.get(m.id, float(m.latency_ms)) for m in models}
        top_latency = max(latencies.values()) or 1.0
        top_context = math.log(max(m.context_window for m in models))
        pref_key = req.kind.value if req.kind else req.task.value
        prefs = self.preferences.get(pref_key, [])
        weight = 2.0 if pref_key in self._user_keys else 1.0
        out = []
        for m in models:
            # Prices span three orders of magnitude: compare them on a log scale.
            price = 1.0 - math.log1p(costs[m.id] * 1e4) / math.log1p(top_cost * 1e4) if top_cost > 0 else 1.0
            latency = 1.0 - latencies[m.id] / top_latency
            context = math.log(m.context_window) / top_context
            score = wq * m.quality / 100 + wp * price + wl * latency + wc * context
            score += weight * _preference_bonus(m, prefs)
            # AI_PROVIDER_PRIORITY breaks near-ties: earlier providers get a hair more.
            score += 0.001 * (len(priority) - priority.index(PROVIDER_ALIASES.get(m.provider, m.provider)))
            out.append(Candidate(info=m, score=round(score, 9)))
        out.sort(key=lambda c: -c.score)
        return out

    def _rotate_ties(self, ordered: list[Candidate]) -> list[Candidate]:
        """Round-robin among candidates with the same score, so equal models share load."""
        result: list[Candidate] = []
        i = 0
        while i < len(ordered):
            j = i
            while j < len(ordered) and abs(ordered[j].score - ordered[i].score) < 1e-9:
                j += 1
            group = ordered[i:j]
            if len(group) > 1:
                key = tuple(c.id for c in group)
                turn = next(self._turns.setdefault(key, count())) % len(group)
                group = group[turn:] + group[:turn]
            result.extend(group)
            i = j
        return result

    def _pin(self, model: str, ordered: list[Candidate], skipped: dict[str, str]) -> list[Candidate]:
        info = self.catalog.get(model)  # UnknownModelError names close ids
        if info.id in skipped and skipped[info.id] != "circuit open":
            why = skipped[info.id]
            if why.startswith("over the remaining budget"):
                raise BudgetExceeded(f"model {info.id} cannot be used: {why}; the budget resets on the 1st (UTC)")
            raise ProviderNotConfigured(f"model {info.id} cannot be used: {why}")
        rest = [c for c in ordered if c.id != info.id]
        return [Candidate(info=info, score=float("inf")), *rest]


def _capable(info: ModelInfo, req: RouteRequest) -> bool:
    wanted = set(req.capabilities)
    # Fill-in-the-middle can also be done with a chat prompt: either capability serves.
    if Capability.FIM in wanted and not info.supports(Capability.FIM):
        wanted.discard(Capability.FIM)
        wanted.add(Capability.CHAT)
    return all(info.supports(c) for c in wanted)


def _preference_bonus(info: ModelInfo, prefs: Sequence[str]) -> float:
    for rank, name in enumerate(prefs[: len(PREFERENCE_BONUS)]):
        if name == info.id or name == info.provider:
            return PREFERENCE_BONUS[rank]
    return 0.0


def _group_skips(skipped: Mapping[str, str], catalog: Catalog) -> list[tuple[str, str]]:
    """'openai skipped: circuit open' rather than one line per model of that provider."""
    by_provider: dict[str, dict[str, str]] = {}
    for model_id, why in skipped.items():
        by_provider.setdefault(model_id.split("/", 1)[0], {})[model_id] = why
    out = []
    for provider, reasons in by_provider.items():
        total = len(catalog.by_provider(provider))
        whys = set(reasons.values())
        if len(reasons) == total and len(whys) == 1:
            why = whys.pop()
            if why in ("no key", "local model disabled"):
                continue  # not worth a line in every reason: `orchestrator config` says it
            out.append((provider, why))
        else:
            out.extend((model_id, why) for model_id, why in reasons.items() if why not in ("no key",))
    return out[:4]


def _raise_nothing_left(label: str, skipped: Mapping[str, str]) -> NoReturn:
    whys = sorted(set(skipped.values()))
    if whys and all(w in ("no key", "local model disabled") for w in whys):
        from .providers.registry import how_to_configure

        raise ProviderNotConfigured(f"no model available for {label}: {how_to_configure()}")
    if any(w.startswith("over the remaining budget") for w in whys):
        raise BudgetExceeded(
            f"no model available for {label} within the remaining monthly budget; it resets on the 1st, "
            "or raise AI_MONTHLY_BUDGET / [budget] monthly_usd"
        )
    raise ProviderNotConfigured(f"no model available for {label}: " + "; ".join(whys[:4]))
