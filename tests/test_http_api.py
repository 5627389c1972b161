"""The `/api/ai/` endpoints, `/health` and `/metrics`, with httpx against a real gateway over
the fake provider server."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.fakes.facade import FLAWED
from tests.fakes.provider_server import FakeProviderServer, Script
from tests.gateway.harness import Gateway, serve


@pytest.fixture
async def gw(fake_provider: FakeProviderServer, tmp_path: Path) -> AsyncIterator[Gateway]:
    async with serve(fake_provider, tmp_path, AI_MONTHLY_BUDGET="10") as gateway:
        yield gateway


async def events(response: httpx.Response) -> list[dict[str, Any]]:
    out = []
    async for line in response.aiter_lines():
        if line.startswith("data: "):
            out.append(json.loads(line[6:]))
    return out


async def test_chat_streams_start_tokens_done_and_keeps_the_conversation(gw: Gateway) -> None:
    gw.fake.script(Script(chunks=["Use ", "memo", "ization."], usage=(30, 3)), Script(text="Because of repeats."))
    async with gw.http() as http:
        async with http.stream("POST", "/api/ai/chat", json={"message": "Why is fib slow?"}) as resp:
            assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/event-stream")
            assert resp.headers["x-orchestrator-reason"].startswith("chat -> ")
            got = await events(resp)
        start, *tokens, done = got
        assert start["type"] == "start" and start["model"] in gw.orch.catalog
        assert start["provider"] == start["model"].split("/")[0] and start["message_id"].startswith("msg-")
        assert [t["content"] for t in tokens] == ["Use ", "memo", "ization."]
        assert all(t["type"] == "token" for t in tokens)
        assert done["type"] == "done" and done["finish_reason"] == "stop" and done["total_tokens"] == 33
        assert done["usage"] == {"prompt_tokens": 30, "completion_tokens": 3, "total_tokens": 33}
        assert done["cost"] > 0 and done["message_id"] == start["message_id"]

        conversation = start["conversation_id"]
        again = await http.post(
            "/api/ai/chat", params={"stream": "false"}, json={"message": "Why?", "conversation_id": conversation}
        )
        history = await http.get(f"/api/ai/conversations/{conversation}")
        listing = await http.get("/api/ai/conversations")
    answer = again.json()
    assert answer["content"] == "Because of repeats." and answer["conversation_id"] == conversation
    assert set(answer) >= {"message_id", "provider", "model", "usage", "cost", "reason"}
    sent = [m["content"] for m in gw.fake.requests[-1].json["messages"]]
    assert sent[-3:] == ["Why is fib slow?", "Use memoization.", "Why?"]  # the history came first
    conv = history.json()
    assert conv["conversation_id"] == conversation and conv["title"] == "Why is fib slow?"
    assert [(m["id"], m["role"], m["content"]) for m in conv["messages"]] == [
        ("msg-1", "user", "Why is fib slow?"),
        ("msg-2", "assistant", "Use memoization."),
        ("msg-3", "user", "Why?"),
        ("msg-4", "assistant", "Because of repeats."),
    ]
    assert conv["messages"][1]["model"] == start["model"] and conv["created_at"].endswith("Z")
    assert listing.json()["conversations"][0]["message_count"] == 4


async def test_chat_sends_the_file_context_and_honours_options(gw: Gateway) -> None:
    body = {
        "message": "Explain the loop",
        "context": {
            "file_path": "app/run.py",
            "file_content": FLAWED,
            "selected_text": "    for x in items:\n        out = out + x",
            "project_context": "Python 3.12 service",
        },
        "options": {"provider": "openai", "model": "gpt-6-luna", "max_tokens": 100, "stream": False},
    }
    async with gw.http() as http:
        resp = await http.post("/api/ai/chat", json=body)
    assert resp.status_code == 200, resp.text
    assert resp.json()["model"] == "openai/gpt-6-luna"
    sent = gw.fake.requests[-1].json
    assert sent["model"] == "gpt-6-luna" and sent["max_tokens"] == 100
    prompt = sent["messages"][-1]["content"]
    assert "Project: Python 3.12 service" in prompt and "File: app/run.py (python)" in prompt
    assert "out = out + x" in prompt


async def test_unknown_conversation_is_404_and_failed_chats_leave_none_behind(gw: Gateway) -> None:
    gw.fake.default = Script(error="auth")
    async with gw.http() as http:
        missing = await http.post("/api/ai/chat", json={"message": "hi", "conversation_id": "nope"})
        history = await http.get("/api/ai/conversations/nope")
        failed = await http.post("/api/ai/chat", json={"message": "hi"})
    assert missing.status_code == 404 and missing.json()["error"] == "not_found"
    assert history.status_code == 404 and history.json() == {"error": "not_found", "message": "no conversation 'nope'"}
    assert failed.status_code == 503 and failed.json()["error"] == "all_providers_unavailable"
    assert await gw.orch.conversations.list() == []


async def test_code_analysis_returns_findings_summary_and_cost(gw: Gateway) -> None:
    ai = {
        "kind": "performance",
        "severity": "warning",
        "line": 11,
        "code": "out = out + x",
        "message": "Manual accumulation in a loop",
        "suggestion": "return sum(items)",
    }
    gw.fake.default = Script(text=json.dumps({"findings": [ai]}))
    body = {"code": FLAWED, "language": "python", "analysis_types": ["security", "performance"]}
    async with gw.http() as http:
        resp = await http.post("/api/ai/code-analysis", json=body)
        single = await http.post(
            "/api/ai/code-analysis", json={"code": FLAWED, "language": "python", "analysis_type": "performance"}
        )
        bad = await http.post("/api/ai/code-analysis", json={"code": FLAWED, "analysis_type": "poetry"})
        camel = await http.post("/api/ai/code-analysis", json={"code": FLAWED, "analysisTypes": ["style"]})
    assert resp.status_code == 200, resp.text
    data = resp.json()
    assert data["analysis_id"].startswith("ana-") and data["code_hash"].startswith("sha256-")
    assert data["analysis_types"] == ["security", "performance"]
    by_type = {(f["type"], f["line"]): f for f in data["findings"]}
    shell = by_type[("B602", 5)]  # bandit: subprocess with shell=True, on line 5 (1-based)
    assert shell["severity"] == "high" and shell["kind"] == "security" and shell["suggestion"]
    loop = next(f for f in data["findings"] if f["source"].startswith("ai/"))
    assert (loop["line"], loop["severity"], loop["message"]) == (11, "medium", "Manual accumulation in a loop")
    assert loop["suggestion"] == "return sum(items)"
    assert data["summary"].startswith(f"Found {len(data['findings'])} issues:") and "1 high" in data["summary"]
    assert data["analysis_cost"] > 0 and data["models"] and "security → " in data["reason"]
    assert single.json()["analysis_type"] == "performance"
    assert camel.json()["analysis_types"] == ["style"]  # camelCase from JavaScript clients too
    assert bad.status_code == 400 and "valid kinds" in bad.json()["message"]


async def test_usage_by_provider_and_model_with_the_budget(gw: Gateway) -> None:
    gw.fake.default = Script(chunks=["ok"], usage=(1000, 100))
    async with gw.http() as http:
        for i in range(3):
            await http.post("/api/ai/chat", params={"stream": "false"}, json={"message": f"question {i}"})
        usage = (await http.get("/api/ai/usage")).json()
        today = (await http.get("/api/ai/usage", params={"period": "day"})).json()
        bad = await http.get("/api/ai/usage", params={"period": "year"})
    total = usage["usage"]
    assert total["total_requests"] == 3 and total["total_tokens"] == 3300 and total["total_cost"] > 0
    assert sum(p["requests"] for p in usage["by_provider"].values()) == 3
    assert sum(m["cost"] for m in usage["by_model"].values()) == pytest.approx(total["total_cost"])
    budget = usage["budget"]
    assert budget["monthly_limit"] == 10.0 and budget["warning_threshold"] == 80
    assert budget["used_percentage"] == pytest.approx(round(total["total_cost"] / 10 * 100, 1))
    assert usage["period"] == budget["period"] and len(today["period"]) == 10
    assert bad.status_code == 400


async def test_providers_health_circuits_and_a_live_probe(gw: Gateway) -> None:
    async with gw.http() as http:
        listing = (await http.get("/api/ai/providers")).json()["providers"]
        ok = await http.post("/api/ai/providers/openai/test")
        gw.fake.script(Script(error="auth"))
        refused = await http.post("/api/ai/providers/anthropic/test")
        local = await http.post("/api/ai/providers/local/test")
        unknown = await http.post("/api/ai/providers/acme/test")
        health = await http.get("/health")
    by_name = {p["name"]: p for p in listing}
    assert by_name["openai"]["configured"] and by_name["openai"]["circuit"] == "closed"
    assert by_name["openai"]["health"] == "ok" and "openai/gpt-6-luna" in by_name["openai"]["models"]
    assert by_name["ollama"]["health"] == "not_configured"
    probe = ok.json()
    assert probe["ok"] is True and probe["provider"] == "openai" and probe["latency_ms"] >= 0
    assert probe["model"].startswith("openai/") and probe["circuit"] == "closed" and probe["error"] is None
    assert [r.format for r in gw.fake.requests] == ["openai", "anthropic"]  # one try each: no retry, no fallback
    assert gw.fake.requests[0].json["messages"][-1]["content"].startswith("Reply with")
    bad = refused.json()
    assert bad["ok"] is False and bad["error"]["type"] == "authentication_failed" and bad["error"]["status"] == 401
    assert local.json()["ok"] is False and local.json()["error"]["type"] == "not_configured"
    assert unknown.status_code == 404
    rows = await gw.orch.ledger.recent(5)
    assert [r.task for r in rows[:2]] == ["probe", "probe"] and rows[0].outcome == "error:AuthenticationError"
    assert health.status_code == 200
    assert health.json()["status"] == "ok" and health.json()["providers"]["openai"]["circuit"] == "closed"


async def test_health_shows_open_circuits(gw: Gateway) -> None:
    for provider in ("openai", "anthropic", "gemini"):
        breaker = gw.orch.resilience.breaker(provider)
        for _ in range(breaker.failure_threshold):
            breaker.record_failure()
    async with gw.http() as http:
        health = (await http.get("/health")).json()
        providers = (await http.get("/api/ai/providers")).json()["providers"]
    assert health["status"] == "unavailable"
    assert {p["name"]: p["health"] for p in providers}["openai"] == "down"
    assert all(p["retry_in"] > 0 for p in providers if p["health"] == "down")


async def test_metrics_in_prometheus_format(gw: Gateway) -> None:
    gw.fake.default = Script(chunks=["a", "b"], usage=(20, 2))
    async with gw.openai() as client:
        for _ in range(2):  # the second is a cache hit
            await client.chat.completions.create(model="auto", messages=[{"role": "user", "content": "q"}])
        stream = await client.chat.completions.create(
            model="auto", messages=[{"role": "user", "content": "s"}], stream=True
        )
        async for _ in stream:
            pass
    async with gw.http() as http:
        await http.get("/api/ai/usage", headers={"Authorization": "Bearer wrong"})
        resp = await http.get("/metrics")
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/plain; version=0.0.4")
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(resp.text)
        for s in family.samples
    }

    def value(name: str, **labels: str) -> float:
        return samples[(name, tuple(sorted(labels.items())))]

    route = "/v1/chat/completions"
    assert value("orchestrator_http_requests_total", method="POST", route=route, status="200") == 3
    assert value("orchestrator_http_requests_total", method="GET", route="/api/ai/usage", status="401") == 1
    assert value("orchestrator_http_request_duration_seconds_count", route=route) == 3
    assert value("orchestrator_http_time_to_first_token_seconds_count", route=route) == 1
    [model] = {dict(k[1])["model"] for k in samples if k[0] == "orchestrator_model_calls_total"}
    provider = model.split("/")[0]
    assert value("orchestrator_model_calls_total", provider=provider, model=model) == 3
    assert value("orchestrator_cache_hits_total", provider=provider, model=model) == 1
    assert value("orchestrator_tokens_total", provider=provider, model=model, direction="output") == 6
    assert value("orchestrator_cost_usd_total", provider=provider, model=model) > 0
    assert value("orchestrator_circuit_state", provider="openai", state="closed") == 1
    assert value("orchestrator_circuit_state", provider="openai", state="open") == 0
    assert value("orchestrator_budget_limit_usd") == 10
    assert 0 < value("orchestrator_budget_used_ratio") < 0.01
    assert value("orchestrator_cache_entries") == 2
    assert value("orchestrator_model_call_duration_seconds_count", model=model) == 3
