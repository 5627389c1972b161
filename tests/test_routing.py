"""Routing decisions: candidates, constraints and the reason users see."""

from __future__ import annotations

import pytest

from orchestrator.catalog import Catalog
from orchestrator.errors import ProviderNotConfigured, UnknownModelError
from orchestrator.routing import Router, RouteRequest, Task, estimate_complexity
from orchestrator.settings import Settings, load_settings
from orchestrator.types import AnalysisKind, Capability, Profile

CATALOG = Catalog.load()
ALL_KEYS = {"OPENAI_API_KEY": "k1", "ANTHROPIC_API_KEY": "k2", "GEMINI_API_KEY": "k3"}


def settings(tmp_path, **env: str) -> Settings:
    return load_settings(cwd=tmp_path, env={"XDG_CONFIG_HOME": str(tmp_path / "x"), **env})


def analysis(kind: AnalysisKind, profile: Profile, **kw: object) -> RouteRequest:
    return RouteRequest(
        task=Task.ANALYSIS, kind=kind, profile=profile, prompt_tokens=3000, code_lines=120, max_output=4096, **kw
    )  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kind", "profile", "expected"),
    [
        (AnalysisKind.SECURITY, Profile.QUALITY, "anthropic/claude-opus-5-5"),
        (AnalysisKind.SECURITY, Profile.BALANCED, "anthropic/claude-sonnet-5-5"),
        (AnalysisKind.SECURITY, Profile.BUDGET, "anthropic/claude-haiku-5-5"),
        (AnalysisKind.PERFORMANCE, Profile.BALANCED, "openai/gpt-6.2-sol"),
        (AnalysisKind.STYLE, Profile.BALANCED, "gemini/gemini-3.8-flash"),
        (AnalysisKind.REFACTORING, Profile.QUALITY, "anthropic/claude-sonnet-5-5"),
        (AnalysisKind.TESTING, Profile.SPEED, "openai/gpt-6-luna"),
    ],
)
def test_model_per_kind_and_profile_with_reason(tmp_path, kind, profile, expected) -> None:
    decision = Router(settings(tmp_path, **ALL_KEYS), CATALOG).route(analysis(kind, profile))
    assert decision.candidates[0].id == expected
    assert decision.reason.startswith(f"{kind.value} → {expected} ({profile.value} profile")
    ids = [c.id for c in decision.candidates]
    assert len(ids) == len(set(ids)) > 3  # fallbacks follow
    assert all(c.provider in ("openai", "anthropic", "gemini") for c in decision.candidates)


def test_simple_requests_go_to_cheaper_models(tmp_path) -> None:
    router = Router(settings(tmp_path, **ALL_KEYS), CATALOG)
    small = RouteRequest(task=Task.CHAT, prompt_tokens=200, max_output=300)
    big = RouteRequest(task=Task.CHAT, prompt_tokens=9000, max_output=2000)
    assert estimate_complexity(small) == "simple" and estimate_complexity(big) == "complex"
    cheap, strong = router.route(small).candidates[0].info, router.route(big).candidates[0].info
    assert cheap.output_per_mtok < strong.output_per_mtok
    assert "simple request" in router.route(small).reason
    # With cost optimization off, the same simple request is not pushed down.
    plain = Router(settings(tmp_path, AI_COST_OPTIMIZATION="false", **ALL_KEYS), CATALOG)
    assert plain.route(small).candidates[0].info.quality > cheap.quality


def test_only_providers_with_keys_and_in_priority(tmp_path) -> None:
    only_openai = Router(settings(tmp_path, OPENAI_API_KEY="k"), CATALOG).route(
        analysis(AnalysisKind.SECURITY, Profile.QUALITY)
    )
    assert {c.provider for c in only_openai.candidates} == {"openai"}
    prio = Router(settings(tmp_path, AI_PROVIDER_PRIORITY="gemini", **ALL_KEYS), CATALOG)
    decision = prio.route(analysis(AnalysisKind.SECURITY, Profile.QUALITY))
    assert {c.provider for c in decision.candidates} == {"gemini"}
    assert "not in AI_PROVIDER_PRIORITY" in decision.reason


def test_nothing_configured_says_what_to_set(tmp_path) -> None:
    with pytest.raises(ProviderNotConfigured, match="OPENAI_API_KEY"):
        Router(settings(tmp_path), CATALOG).route(analysis(AnalysisKind.STYLE, Profile.BALANCED))


def test_local_model_only_when_enabled(tmp_path) -> None:
    req = RouteRequest(
        task=Task.COMPLETION,
        profile=Profile.SPEED,
        prompt_tokens=300,
        max_output=64,
        capabilities=frozenset({Capability.FIM}),
    )
    off = Router(settings(tmp_path, **ALL_KEYS), CATALOG).route(req)
    assert all(c.provider != "ollama" for c in off.candidates)
    on = Router(settings(tmp_path, LOCAL_MODEL_ENABLED="true", **ALL_KEYS), CATALOG).route(req)
    assert on.candidates[0].provider == "ollama" and on.candidates[0].info.supports("fim")


def test_open_circuit_is_skipped_with_reason(tmp_path) -> None:
    router = Router(settings(tmp_path, **ALL_KEYS), CATALOG, available=lambda p: p != "anthropic")
    decision = router.route(analysis(AnalysisKind.SECURITY, Profile.QUALITY))
    providers = [c.provider for c in decision.candidates]
    # Still listed, but last: the resilience loop reports when its circuit allows a probe.
    first_anthropic = providers.index("anthropic")
    assert all(p == "anthropic" for p in providers[first_anthropic:]) and first_anthropic > 0
    assert "anthropic skipped: circuit open" in decision.reason


def test_context_window_and_capabilities_are_hard_constraints(tmp_path) -> None:
    s = settings(tmp_path, LOCAL_MODEL_ENABLED="true", **ALL_KEYS)
    decision = Router(s, CATALOG).route(RouteRequest(task=Task.CHAT, prompt_tokens=100_000, max_output=4096))
    assert all(c.context_window >= 104_096 for c in decision.candidates)
    assert any("context 32,768 <" in why for why in decision.skipped.values())
    vision = Router(s, CATALOG).route(RouteRequest(task=Task.CHAT, capabilities=frozenset({Capability.VISION})))
    assert all(c.info.supports("vision") for c in vision.candidates)


def test_max_cost_and_remaining_budget(tmp_path) -> None:
    s = settings(tmp_path, **ALL_KEYS)
    s.routing.max_cost_per_request = 0.01
    req = analysis(AnalysisKind.SECURITY, Profile.QUALITY)
    decision = Router(s, CATALOG).route(req)
    assert all(c.info.cost(req.prompt_tokens, req.max_output) <= 0.01 for c in decision.candidates)
    s.routing.max_cost_per_request = None
    poor = Router(s, CATALOG, remaining_budget=lambda: 0.005).route(req)
    assert all(c.info.cost(req.prompt_tokens, req.max_output) <= 0.005 for c in poor.candidates)
    assert "over the remaining budget" in " ".join(poor.skipped.values())


def test_round_robin_among_equal_scores(tmp_path) -> None:
    s = settings(tmp_path, **ALL_KEYS)
    twin = CATALOG.get("openai/gpt-6-luna").model_dump()
    twin.update(id="openai/gpt-6-luna-twin", model="gpt-6-luna-twin")
    catalog = Catalog.load({"openai/gpt-6-luna-twin": {k: v for k, v in twin.items() if k != "id"}})
    router = Router(s, catalog, preferences={"style": []})
    req = RouteRequest(task=Task.ANALYSIS, kind=AnalysisKind.STYLE, profile=Profile.SPEED, prompt_tokens=300)
    firsts = [router.route(req).candidates[0].id for _ in range(4)]
    assert set(firsts) == {"openai/gpt-6-luna", "openai/gpt-6-luna-twin"}
    assert firsts[0] != firsts[1] and firsts[0] == firsts[2]


def test_user_preferences_and_observed_latency(tmp_path) -> None:
    s = settings(tmp_path, **ALL_KEYS)
    s.routing.preferences = {"security": ["gemini/gemini-3.1-pro-preview"]}
    router = Router(s, CATALOG)
    assert router.route(analysis(AnalysisKind.SECURITY, Profile.BALANCED)).candidates[0].id == (
        "gemini/gemini-3.1-pro-preview"
    )
    fast = Router(settings(tmp_path, **ALL_KEYS), CATALOG)
    before = fast.route(RouteRequest(task=Task.CHAT, profile=Profile.SPEED, prompt_tokens=300)).candidates[0].id
    fast.set_observed_latency(before, 60_000.0)  # the ledger saw it crawl
    after = fast.route(RouteRequest(task=Task.CHAT, profile=Profile.SPEED, prompt_tokens=300)).candidates[0].id
    assert after != before


def test_pinned_model_first_then_fallbacks(tmp_path) -> None:
    router = Router(settings(tmp_path, **ALL_KEYS), CATALOG)
    decision = router.route(RouteRequest(task=Task.CHAT, model="gemini/gemini-3.5-flash-lite"))
    assert decision.candidates[0].id == "gemini/gemini-3.5-flash-lite" and len(decision.candidates) > 1
    assert "pinned" in decision.reason
    with pytest.raises(UnknownModelError):
        router.route(RouteRequest(task=Task.CHAT, model="gpt-9000"))
    no_fallback = Router(settings(tmp_path, AI_AUTO_FALLBACK="false", **ALL_KEYS), CATALOG)
    assert len(no_fallback.route(RouteRequest(task=Task.CHAT)).candidates) == 1
