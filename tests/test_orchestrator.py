"""The facade end to end: routing, fallback, cache, ledger, budget and consensus, against
the fake provider server over real HTTP."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from orchestrator.cache import ResponseCache
from orchestrator.catalog import Catalog
from orchestrator.conversations import ConversationStore
from orchestrator.core import Orchestrator
from orchestrator.errors import AllProvidersUnavailable, BudgetExceeded
from orchestrator.ledger import BudgetAlert, Ledger
from orchestrator.resilience import IncompleteStream
from orchestrator.settings import Settings, load_settings
from orchestrator.types import AnalysisKind, Document, Message, Profile, Range
from tests.fakes.facade import FLAWED, findings_json, make_settings
from tests.fakes.provider_server import FakeProviderServer, Script

DOC = Document(path="app/run.py", text=FLAWED, language="python")


class Clock:
    def __init__(self) -> None:
        self.now = 1_790_000_000.0

    def __call__(self) -> float:
        return self.now


Factory = Callable[..., Any]


@pytest.fixture
async def orch_factory(fake_provider: FakeProviderServer, tmp_path: Path) -> AsyncIterator[Factory]:
    made: list[Orchestrator] = []

    async def build(*, clock: Clock | None = None, settings: Settings | None = None, **env: str) -> Orchestrator:
        s = settings or make_settings(fake_provider, tmp_path, **env)
        if clock is None:
            orch = await Orchestrator.create(s, front_end="test")
        else:
            ledger = await Ledger.open(tmp_path / "data" / "ledger.db", monthly_budget=s.budget.monthly_usd)
            cache = await ResponseCache.open(tmp_path / "data" / "cache.db", ttl_seconds=60, clock=clock)
            conversations = await ConversationStore.open(tmp_path / "data" / "conversations.db")
            orch = Orchestrator(
                s,
                catalog=Catalog.load(s.models),
                ledger=ledger,
                cache=cache,
                conversations=conversations,
                front_end="test",
            )
        made.append(orch)
        return orch

    yield build
    for orch in made:
        await orch.close()


def provider_of(request: Any) -> str:
    if request.path.startswith("/v1beta"):
        return "gemini"
    return "anthropic" if request.path == "/v1/messages" else "openai"


async def test_analyze_merges_ai_and_builtin_findings(orch_factory: Factory, fake_provider: FakeProviderServer) -> None:
    orch = await orch_factory()
    fake_provider.default = Script(
        text=findings_json(
            {
                "kind": "performance",
                "severity": "warning",
                "line": 11,
                "code": "out = out + x",
                "message": "Manual accumulation in a loop; sum() is clearer and faster",
                "suggestion": "return sum(items)",
            },
            {"kind": "performance", "line": 3, "code": "print('not in the file')", "message": "invented code"},
        )
    )
    result = await orch.analyze(DOC, kinds=[AnalysisKind.SECURITY, AnalysisKind.PERFORMANCE], profile=Profile.BALANCED)
    by_source = {(f.source, f.range.start.line) for f in result.findings}
    assert ("orchestrator/bandit", 4) in by_source  # shell=True, from the built-in analyzer
    ai = [f for f in result.findings if f.source.startswith("ai/")]
    assert [(f.kind, f.range.start.line) for f in ai] == [(AnalysisKind.PERFORMANCE, 10)]
    assert result.models and "security → anthropic/claude-sonnet-5-5 (balanced profile)" in result.reason
    # A 12-line file is a simple request: cost optimization moves it to a cheaper model.
    assert "performance → anthropic/claude-haiku-5-5 (balanced profile, simple request)" in result.reason
    rows = await orch.ledger.recent(10)
    assert {r.kind for r in rows} == {"security", "performance"} and all(r.task == "analysis" for r in rows)
    assert all(r.front_end == "test" and r.outcome == "ok" and r.cost_usd > 0 for r in rows)


async def test_analyze_without_any_provider_gives_builtin_findings(orch_factory: Factory, tmp_path: Path) -> None:
    settings = load_settings(
        cwd=tmp_path, env={"XDG_CONFIG_HOME": str(tmp_path / "x"), "ORCHESTRATOR_DATA_DIR": str(tmp_path / "d")}
    )
    orch = await orch_factory(settings=settings)
    result = await orch.analyze(DOC, kinds=[AnalysisKind.SECURITY])
    assert result.findings and "no provider configured" in result.notes[0]


async def test_chat_streams_with_model_reason_usage_and_ledger(
    orch_factory: Factory, fake_provider: FakeProviderServer
) -> None:
    orch = await orch_factory()
    fake_provider.script(Script(chunks=["Use ", "a ", "set."], usage=(50, 3)))
    stream = await orch.chat([Message(role="user", content="How do I speed up membership tests?")])
    texts = [c.text async for c in stream if c.text]
    assert texts == ["Use ", "a ", "set."]
    assert stream.state.model and stream.state.usage is not None and stream.state.usage.output_tokens == 3
    assert stream.state.reason.startswith("chat → ")
    [row] = await orch.ledger.recent(5)
    assert row.task == "chat" and row.ttft_ms is not None and row.outcome == "ok" and row.reason == stream.state.reason


async def test_fallback_after_429_honours_retry_after(orch_factory: Factory, fake_provider: FakeProviderServer) -> None:
    orch = await orch_factory()
    fake_provider.script(Script(error="rate_limit", retry_hint="retry-after", retry_after=0.05), Script(text="ok"))
    result = await orch.explain(DOC, Range.lines(4))
    assert result.text == "ok"
    first, second = fake_provider.requests[-2:]
    assert provider_of(first) == provider_of(second)  # the same candidate, tried again after the wait
    outcomes = [r.outcome for r in reversed(await orch.ledger.recent(5))]
    assert outcomes == ["error:RateLimitError", "ok"]


async def test_bad_key_goes_straight_to_the_next_provider(
    orch_factory: Factory, fake_provider: FakeProviderServer
) -> None:
    orch = await orch_factory()
    fake_provider.script(Script(error="auth"), Script(text="answer from another provider"))
    result = await orch.explain(DOC, Range.lines(4))
    assert result.text == "answer from another provider"
    first, second = fake_provider.requests[-2:]
    assert provider_of(first) != provider_of(second)
    assert "after fallback" in result.reason


async def test_context_window_error_moves_to_a_larger_model(
    orch_factory: Factory, fake_provider: FakeProviderServer, tmp_path: Path
) -> None:
    settings = make_settings(fake_provider, tmp_path)
    small = Catalog.load().get("openai/gpt-6-luna").model_dump(exclude={"id"})
    small.update(model="tiny-coder", context_window=16_000, quality=99)
    settings.models = {"openai/tiny-coder": small}
    settings.routing.preferences = {"explanation": ["openai/tiny-coder"]}
    orch = await orch_factory(settings=settings)
    fake_provider.script(Script(error="context_length"), Script(text="fits now"))
    result = await orch.explain(DOC)
    assert result.text == "fits now" and result.model != "openai/tiny-coder"
    assert orch.catalog.get(result.model).context_window > 16_000
    assert fake_provider.requests[-2].json.get("model") == "tiny-coder"


async def test_stream_cut_after_first_token_is_incomplete(
    orch_factory: Factory, fake_provider: FakeProviderServer
) -> None:
    orch = await orch_factory()
    fake_provider.script(Script(chunks=["The answer ", "is ", "long"], cut_after=1))
    stream = await orch.chat([Message(role="user", content="q")])
    seen = []
    with pytest.raises(IncompleteStream) as err:
        async for chunk in stream:
            seen.append(chunk.text)
    assert err.value.partial_text == "The answer " and stream.state.incomplete
    assert len(fake_provider.requests) == 1  # no fallback once text was shown
    [row] = await orch.ledger.recent(1)
    assert row.outcome == "incomplete" and row.output_tokens > 0


async def test_all_down_then_stale_cache(orch_factory: Factory, fake_provider: FakeProviderServer) -> None:
    clock = Clock()
    orch = await orch_factory(clock=clock)
    fake_provider.script(Script(text="cached answer"))
    assert (await orch.explain(DOC)).text == "cached answer"
    clock.now += 3600  # past the TTL
    fake_provider.default = Script(error="unavailable")
    result = await orch.explain(DOC)
    assert result.text == "cached answer" and "stale cache" in result.reason
    assert (await orch.ledger.recent(1))[0].outcome == "stale"
    with pytest.raises(AllProvidersUnavailable) as err:
        await orch.explain(DOC, Range.lines(0))  # never cached
    assert len(err.value.errors) >= 3
    assert all("503" in str(e) or "circuit" in str(e) for e in err.value.errors.values())


async def test_cache_hit_and_expiry(orch_factory: Factory, fake_provider: FakeProviderServer) -> None:
    clock = Clock()
    orch = await orch_factory(clock=clock)
    fake_provider.default = Script(text="fresh")
    first = await orch.explain(DOC)
    hit = await orch.explain(DOC)
    assert not first.cached and hit.cached and hit.text == "fresh" and hit.usage.cost_usd == 0
    assert len(fake_provider.requests) == 1
    rows = await orch.ledger.recent(2)
    assert rows[0].cache_hit and rows[0].cost_usd == 0
    clock.now += 61
    again = await orch.explain(DOC)
    assert not again.cached and len(fake_provider.requests) == 2


async def test_budget_alerts_then_block(orch_factory: Factory, fake_provider: FakeProviderServer) -> None:
    orch = await orch_factory(AI_MONTHLY_BUDGET="0.05", AI_PROVIDER_PRIORITY="openai")
    alerts: list[BudgetAlert] = []
    orch.add_listener(alerts.append)
    # Each answer: 1,000 tokens from gpt-6-luna ($0.50/M out) = $0.0005, + a small prompt; the
    # worst case reserved (2,048 tokens) is 2 % of the budget, so 95 % is reached before the block.
    fake_provider.default = Script(chunks=["word "] * 1000)
    with pytest.raises(BudgetExceeded, match="budget"):
        for i in range(1000):
            await orch.explain(Document(path="a.py", text=f"x = {i}\n", language="python"), profile="budget")
    assert [a.level for a in alerts][:3] == [50, 80, 95]
    assert all(a.budget_usd == 0.05 for a in alerts) and "50%" in alerts[0].message
    state = await orch.ledger.budget_state()
    assert state.spent_usd <= 0.05 and state.alert_level >= 95


async def test_concurrent_calls_never_overspend(orch_factory: Factory, fake_provider: FakeProviderServer) -> None:
    from orchestrator.routing import Task

    orch = await orch_factory(AI_MONTHLY_BUDGET="0.005", AI_PROVIDER_PRIORITY="openai")
    # Real costs close to what is reserved: answers near max_tokens long.
    fake_provider.default = Script(chunks=["w "] * 180)
    calls = [
        orch.ask(
            Task.CHAT, Profile.BUDGET, "s", f"question {i}", use_cache=False, model="openai/gpt-6-luna", max_tokens=200
        )
        for i in range(200)
    ]
    results = await asyncio.gather(*calls, return_exceptions=True)
    blocked = [r for r in results if isinstance(r, BudgetExceeded)]
    ok = [r for r in results if not isinstance(r, BaseException)]
    assert blocked and ok
    assert not [r for r in results if isinstance(r, BaseException) and not isinstance(r, BudgetExceeded)]
    total = await orch.ledger.total_cost()
    assert total <= 0.005
    assert total == pytest.approx(sum(r.usage.cost_usd for r in ok))


async def test_consensus_analysis_merges_by_agreement(orch_factory: Factory, fake_provider: FakeProviderServer) -> None:
    orch = await orch_factory()
    agree = {
        "kind": "performance",
        "severity": "warning",
        "line": 11,
        "code": "out = out + x",
        "message": "a manual accumulation loop; sum(items) does it in C",
    }
    alone = {
        "kind": "performance",
        "line": 5,
        "code": "return subprocess.call(cmd, shell=True)",
        "message": "only one model thinks a subprocess is slow here",
    }
    fake_provider.default = Script(text=findings_json(agree))
    fake_provider.script(Script(text=findings_json(agree, alone)))
    result = await orch.analyze(DOC, kinds=[AnalysisKind.PERFORMANCE], consensus=True)
    assert result.consensus and len(result.models) == 3
    ai = [f for f in result.findings if f.source == "ai/consensus"]
    assert [(f.range.start.line, f.agreement) for f in ai] == [(10, 3)]


async def test_consensus_chat_side_by_side_and_synthesis(
    orch_factory: Factory, fake_provider: FakeProviderServer
) -> None:
    orch = await orch_factory()
    fake_provider.default = Script(text="Agreement: high\nUse a set.")
    out = await orch.consensus_chat([Message(role="user", content="list or set for lookups?")])
    assert len(out.answers) == 3 and out.synthesis.text.startswith("Agreement: high") and out.agreement == "high"
    assert len(fake_provider.requests) == 4


async def test_batch_bounds_concurrency(orch_factory: Factory, fake_provider: FakeProviderServer) -> None:
    orch = await orch_factory()
    fake_provider.default = Script(text="ok", first_byte_delay=0.02)
    in_flight = 0
    peak = 0

    async def job(i: int) -> str:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        try:
            return (await orch.explain(DOC, Range.lines(i % 12))).text
        finally:
            in_flight -= 1

    results = await orch.batch([lambda i=i: job(i) for i in range(20)], concurrency=4)
    assert peak == 4 and all(r == "ok" for r in results)


async def test_conversations_persist_and_continue(orch_factory: Factory, fake_provider: FakeProviderServer) -> None:
    orch = await orch_factory()
    conversation = await orch.conversations.create("sets vs lists", front_end="test")
    fake_provider.script(Script(text="Use a set."), Script(text="O(1) on average."))
    first = await orch.chat([Message(role="user", content="list or set?")], conversation_id=conversation)
    assert await first.text() == "Use a set."
    second = await orch.chat([Message(role="user", content="why?")], conversation_id=conversation)
    assert await second.text() == "O(1) on average."
    sent = fake_provider.requests[-1].json["messages"]
    assert [m["content"] for m in sent[-3:]] == ["list or set?", "Use a set.", "why?"]  # history came first
    stored = await orch.conversations.get(conversation)
    assert [(m.role, m.content) for m in stored.messages] == [
        ("user", "list or set?"),
        ("assistant", "Use a set."),
        ("user", "why?"),
        ("assistant", "O(1) on average."),
    ]
    assert stored.messages[1].model == second.state.model or stored.messages[1].model
    [summary] = await orch.conversations.list()
    assert summary.id == conversation and summary.message_count == 4


async def test_analyze_with_known_builtin_findings_does_not_rerun_them(
    orch_factory: Factory, fake_provider: FakeProviderServer
) -> None:
    orch = await orch_factory()
    fake_provider.default = Script(text=findings_json())
    known = (await orch.builtin.analyze([DOC], [AnalysisKind.SECURITY])).findings
    marker = known[0].model_copy(update={"message": "from the front end's own run"})
    result = await orch.analyze(DOC, kinds=["security"], builtin_findings=[marker])
    assert [f.message for f in result.findings] == ["from the front end's own run"]
