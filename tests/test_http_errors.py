"""Every error the gateway answers with: status, body (OpenAI's shape under /v1, the flat
`/api/ai/` shape elsewhere) and headers; plus client keys, body limits and CORS."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import openai
import pytest

from server.http.auth import KeyChecker, KeyStore
from tests.fakes.provider_server import FakeProviderServer, Script
from tests.gateway.harness import serve

CHAT = {"model": "auto", "messages": [{"role": "user", "content": "q"}]}


async def test_missing_or_wrong_key_is_401_invalid_api_key(fake_provider: FakeProviderServer, tmp_path: Path) -> None:
    async with serve(fake_provider, tmp_path) as gw:
        async with gw.openai(key="sk-orch-not-a-real-key") as client:
            with pytest.raises(openai.AuthenticationError) as wrong:
                await client.chat.completions.create(**CHAT)
        async with gw.http(headers={"Authorization": ""}) as http:
            anonymous = await http.post("/v1/chat/completions", json=CHAT)
            flat = await http.get("/api/ai/usage")
            other_header = await http.get("/api/ai/usage", headers={"x-api-key": gw.key or ""})
            metrics = await http.get("/metrics")
            page = await http.get("/")
            script = await http.get("/static/usage.js")
            health = await http.get("/health")
    assert wrong.value.status_code == 401 and wrong.value.code == "invalid_api_key"
    assert wrong.value.type == "invalid_request_error" and "not valid" in wrong.value.message
    assert anonymous.status_code == 401
    assert anonymous.headers["www-authenticate"].startswith("Bearer") and anonymous.headers["x-should-retry"] == "false"
    assert anonymous.json()["error"]["code"] == "invalid_api_key" and "required" in anonymous.json()["error"]["message"]
    assert flat.status_code == 401 and flat.json()["error"] == "invalid_api_key" and "action" in flat.json()
    assert other_header.status_code == 200
    assert metrics.status_code == 401
    assert [r.status_code for r in (page, script, health)] == [200, 200, 200]  # no data in them
    assert page.headers["content-security-policy"].startswith("default-src 'self'")
    assert fake_provider.requests == []


def test_a_revoked_key_is_refused_within_the_refresh(tmp_path: Path) -> None:
    now = [0.0]
    with KeyStore(tmp_path / "keys.db") as admin:
        key = admin.create("ci")
        checker = KeyChecker(KeyStore(tmp_path / "keys.db"), refresh_every=1.0, clock=lambda: now[0])
        assert checker.check(key) == "ci" and checker.check("sk-orch-guess") is None and checker.check(None) is None
        assert admin.revoke("ci") and not admin.revoke("ci")
        assert checker.check(key) == "ci"  # within the second: the cached table
        now[0] = 1.5
        assert checker.check(key) is None
        second = admin.create("ci")  # the name is free again once revoked
        now[0] = 3.0
        assert checker.check(second) == "ci"
        assert [(k.name, k.revoked is not None) for k in admin.list()] == [("ci", True), ("ci", False)]
        with pytest.raises(Exception, match="exists"):
            admin.create("ci")
        checker.close()
    stored = b"".join(p.read_bytes() for p in tmp_path.glob("keys.db*"))
    assert key.encode() not in stored and second.encode() not in stored  # hashes only


async def test_all_providers_down_is_503_with_each_providers_state(
    fake_provider: FakeProviderServer, tmp_path: Path
) -> None:
    fake_provider.default = Script(error="unavailable")
    async with serve(fake_provider, tmp_path, AI_PROVIDER_PRIORITY="openai,anthropic") as gw:
        async with gw.openai() as client:
            with pytest.raises(openai.APIStatusError) as err:
                await client.chat.completions.create(**CHAT)
        async with gw.http() as http:
            flat = await http.post("/api/ai/chat", json={"message": "q"})
            streamed = await http.post("/v1/chat/completions", json={**CHAT, "stream": True})
    assert err.value.status_code == 503 and err.value.code == "all_providers_unavailable"
    body = flat.json()
    assert flat.status_code == 503 and body["error"] == "all_providers_unavailable"
    assert body["message"] == "All AI providers are currently unavailable" and body["fallback_available"] is False
    assert set(body["details"]) == {"openai", "anthropic"}
    assert set(body["details"].values()) <= {"service_unavailable", "circuit_open"}
    assert body["providers"]["openai"]["circuit"] == "open"  # five failures opened it
    retry = int(flat.headers["retry-after"])
    assert retry == body["retry_after"] and 0 < retry <= 30
    # Streaming asked for, but nothing streamed yet: the same status and body, not a 200 stream.
    assert streamed.status_code == 503 and streamed.json()["error"]["code"] == "all_providers_unavailable"
    assert streamed.json()["error"]["details"]["openai"] in ("service_unavailable", "circuit_open")


async def test_spent_budget_is_429_budget_exceeded(fake_provider: FakeProviderServer, tmp_path: Path) -> None:
    async with serve(fake_provider, tmp_path, AI_MONTHLY_BUDGET="0") as gw:
        async with gw.openai() as client:
            with pytest.raises(openai.RateLimitError) as err:
                await client.chat.completions.create(**CHAT)
        async with gw.http() as http:
            flat = await http.post("/api/ai/chat", json={"message": "q"})
            analysis = await http.post("/api/ai/code-analysis", json={"code": "x = 1\n", "analysis_type": "style"})
    assert err.value.status_code == 429 and err.value.code == "budget_exceeded"
    assert err.value.response.headers["x-should-retry"] == "false"
    body = flat.json()
    assert flat.status_code == 429 and body["error"] == "budget_exceeded" and "budget" in body["message"]
    assert body["budget"]["monthly_limit"] == 0 and body["budget"]["resets_at"].endswith("T00:00:00Z")
    assert 0 < int(flat.headers["retry-after"]) <= 31 * 86400
    assert analysis.status_code == 429 and analysis.json()["error"] == "budget_exceeded"
    assert fake_provider.requests == []


async def test_budget_spent_during_the_month_blocks_the_next_call(
    fake_provider: FakeProviderServer, tmp_path: Path
) -> None:
    fake_provider.default = Script(chunks=["word "] * 2000)
    async with serve(fake_provider, tmp_path, AI_MONTHLY_BUDGET="0.002", AI_PROVIDER_PRIORITY="openai") as gw:
        async with gw.openai() as client:
            statuses = []
            for i in range(20):
                try:
                    await client.chat.completions.create(
                        model="openai/gpt-6-luna", messages=[{"role": "user", "content": f"q{i}"}], max_tokens=2000
                    )
                    statuses.append(200)
                except openai.RateLimitError as exc:
                    statuses.append(exc.status_code)
                    assert exc.code == "budget_exceeded"
                    break
        state = await gw.orch.ledger.budget_state()
    assert statuses[0] == 200 and statuses[-1] == 429
    assert 0 < state.spent_usd <= 0.002


async def test_body_size_limit_is_413(fake_provider: FakeProviderServer, tmp_path: Path) -> None:
    async with serve(fake_provider, tmp_path, max_body=2000) as gw:
        big = {"model": "auto", "messages": [{"role": "user", "content": "x" * 5000}]}

        async def chunked() -> AsyncIterator[bytes]:
            for _ in range(10):
                yield b"x" * 500

        async with gw.http() as http:
            declared = await http.post("/v1/chat/completions", json=big)
            streamed = await http.post("/api/ai/code-analysis", content=chunked())
            fine = await http.post("/v1/chat/completions", json=CHAT)
    assert declared.status_code == 413 and declared.json()["error"]["code"] == "request_too_large"
    assert streamed.status_code == 413 and streamed.json()["error"] == "request_too_large"
    assert fine.status_code == 200 and len(fake_provider.requests) == 1


async def test_malformed_requests_and_unknown_routes(fake_provider: FakeProviderServer, tmp_path: Path) -> None:
    async with serve(fake_provider, tmp_path) as gw, gw.http() as http:
        not_json = await http.post("/v1/chat/completions", content=b"{oops")
        empty = await http.post("/api/ai/chat", content=b"")
        no_messages = await http.post("/v1/chat/completions", json={"model": "auto"})
        assistant_last = await http.post(
            "/v1/chat/completions", json={"messages": [{"role": "assistant", "content": "hi"}]}
        )
        bad_flag = await http.post("/api/ai/chat", params={"stream": "maybe"}, json={"message": "q"})
        nowhere = await http.get("/v1/engines")
        wrong_method = await http.get("/v1/chat/completions")
    assert not_json.status_code == 400 and "not valid JSON" in not_json.json()["error"]["message"]
    assert empty.status_code == 400 and empty.json()["error"] == "invalid_request"
    assert no_messages.status_code == 400 and no_messages.json()["error"]["fields"][0]["field"] == "messages"
    assert assistant_last.status_code == 400 and "last message" in assistant_last.json()["error"]["message"]
    assert bad_flag.status_code == 400
    assert nowhere.status_code == 404 and nowhere.json()["error"]["code"] == "not_found"
    assert wrong_method.status_code == 405 and wrong_method.json()["error"]["code"] == "method_not_allowed"
    assert fake_provider.requests == []


async def test_cors_is_off_unless_configured(fake_provider: FakeProviderServer, tmp_path: Path) -> None:
    preflight = {"Origin": "http://dash.example", "Access-Control-Request-Method": "POST"}
    async with serve(fake_provider, tmp_path) as gw, gw.http() as http:
        off = await http.options("/v1/chat/completions", headers=preflight)
        plain = await http.get("/api/ai/usage", headers={"Origin": "http://dash.example"})
    assert "access-control-allow-origin" not in off.headers
    assert "access-control-allow-origin" not in plain.headers
    async with serve(fake_provider, tmp_path / "cors", cors=["http://dash.example"]) as gw, gw.http() as http:
        on = await http.options(
            "/v1/chat/completions", headers={**preflight, "Access-Control-Request-Headers": "authorization"}
        )
        allowed = await http.get("/api/ai/usage", headers={"Origin": "http://dash.example"})
        other = await http.get("/api/ai/usage", headers={"Origin": "http://evil.example"})
    assert on.status_code == 200 and on.headers["access-control-allow-origin"] == "http://dash.example"
    assert allowed.headers["access-control-allow-origin"] == "http://dash.example"
    assert "x-orchestrator-reason" in allowed.headers["access-control-expose-headers"]
    assert "access-control-allow-origin" not in other.headers


async def test_incomplete_stream_on_api_ai_chat_ends_with_an_error_event(
    fake_provider: FakeProviderServer, tmp_path: Path
) -> None:
    fake_provider.script(Script(chunks=["Part ", "of ", "it"], cut_after=2))
    async with serve(fake_provider, tmp_path) as gw, gw.http() as http:
        resp = await http.post("/api/ai/chat", json={"message": "q"})
    kinds = [line for line in resp.text.splitlines() if line.startswith("data: ")]
    assert resp.status_code == 200
    assert '"type":"token"' in kinds[1] and '"type":"token"' in kinds[2]
    assert '"type":"error"' in kinds[-1] and "incomplete_response" in kinds[-1]
    assert not any('"type":"done"' in line for line in kinds)
