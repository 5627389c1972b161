"""The OpenAI-compatible API, with the official `openai` package as the client: a real
gateway (uvicorn, a free port) over the fake provider server."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import openai
import pytest

from tests.fakes.provider_server import FakeProviderServer, Script
from tests.gateway.harness import Gateway, serve

ONE = {"messages": [{"role": "user", "content": "q"}]}


@pytest.fixture
async def gw(fake_provider: FakeProviderServer, tmp_path: Path) -> AsyncIterator[Gateway]:
    async with serve(fake_provider, tmp_path) as gateway:
        yield gateway


async def test_chat_completion_auto_routes_and_says_why(gw: Gateway) -> None:
    gw.fake.script(Script(chunks=["Use ", "a ", "set."], usage=(50, 3)))
    async with gw.openai() as client:
        raw = await client.chat.completions.with_raw_response.create(
            model="auto", messages=[{"role": "user", "content": "How do I speed up membership tests?"}]
        )
        completion = raw.parse()
    assert completion.choices[0].message.content == "Use a set."
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (50, 3)
    assert completion.model in gw.orch.catalog
    reason = raw.headers["x-orchestrator-reason"]
    assert reason.startswith(f"chat -> {completion.model} (balanced profile")
    assert raw.headers["x-orchestrator-model"] == completion.model
    assert raw.headers["x-orchestrator-cache"] == "miss"
    [row] = await gw.orch.ledger.recent(1)
    assert row.front_end == "http:tests" and row.model == completion.model and row.cost_usd > 0
    assert row.reason.replace("→", "->") == reason


async def test_streaming_with_usage_chunk_and_done(gw: Gateway) -> None:
    gw.fake.script(Script(chunks=["Sets ", "hash ", "their ", "items."], usage=(40, 4)))
    async with (
        gw.openai() as client,
        client.chat.completions.with_streaming_response.create(
            model="auto:speed",
            messages=[{"role": "user", "content": "Why are sets fast?"}],
            stream=True,
            stream_options={"include_usage": True},
        ) as response,
    ):
        assert "speed profile" in response.headers["x-orchestrator-reason"]
        assert response.headers["content-type"].startswith("text/event-stream")
        chunks = [chunk async for chunk in await response.parse()]
    texts = [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content]
    assert texts == ["Sets ", "hash ", "their ", "items."]
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes == ["stop"]
    last = chunks[-1]
    assert last.choices == [] and last.usage is not None
    assert (last.usage.prompt_tokens, last.usage.completion_tokens, last.usage.total_tokens) == (40, 4, 44)
    assert all(c.model == chunks[0].model for c in chunks) and chunks[0].model in gw.orch.catalog


async def test_streaming_without_usage_chunk(gw: Gateway) -> None:
    gw.fake.script(Script(chunks=["a", "b"]))
    async with gw.openai() as client:
        stream = await client.chat.completions.create(
            model="auto", messages=[{"role": "user", "content": "q"}], stream=True
        )
        chunks = [chunk async for chunk in stream]
    assert all(c.usage is None for c in chunks) and all(c.choices for c in chunks)
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == "ab"


async def test_pinned_model_and_the_clients_own_system_prompt(gw: Gateway) -> None:
    async with gw.openai() as client:
        raw = await client.chat.completions.with_raw_response.create(
            model="openai/gpt-6-luna",
            messages=[
                {"role": "system", "content": "You answer in French."},
                {"role": "user", "content": "hello"},
            ],
            max_tokens=64,
        )
    assert raw.parse().model == "openai/gpt-6-luna"
    assert "(pinned)" in raw.headers["x-orchestrator-reason"]
    sent = gw.fake.requests[-1]
    assert sent.format == "openai" and sent.json["model"] == "gpt-6-luna" and sent.json["max_tokens"] == 64
    assert {"role": "system", "content": "You answer in French."} in sent.json["messages"]
    assert sent.json["messages"][-1] == {"role": "user", "content": "hello"}


async def test_text_content_parts_are_joined(gw: Gateway) -> None:
    async with gw.openai() as client:
        await client.chat.completions.create(
            model="openai/gpt-6-luna",
            messages=[
                {"role": "user", "content": [{"type": "text", "text": "two "}, {"type": "text", "text": "parts"}]}
            ],
        )
    assert gw.fake.requests[-1].json["messages"][-1]["content"] == "two parts"


async def test_same_request_is_served_from_cache_unless_told_not_to(gw: Gateway) -> None:
    messages = [{"role": "user", "content": "cache me"}]
    async with gw.openai() as client:
        first = await client.chat.completions.with_raw_response.create(model="auto", messages=messages)
        second = await client.chat.completions.with_raw_response.create(model="auto", messages=messages)
        fresh = await client.chat.completions.with_raw_response.create(
            model="auto", messages=messages, extra_headers={"Cache-Control": "no-cache"}
        )
    assert [r.headers["x-orchestrator-cache"] for r in (first, second, fresh)] == ["miss", "hit", "miss"]
    assert second.parse().choices[0].message.content == first.parse().choices[0].message.content
    assert len(gw.fake.requests) == 2


async def test_stream_cut_midway_is_an_error_not_a_short_answer(gw: Gateway) -> None:
    gw.fake.script(Script(chunks=["The answer ", "is ", "long"], cut_after=1))
    seen = []
    async with gw.openai() as client:
        stream = await client.chat.completions.create(
            model="auto", messages=[{"role": "user", "content": "q"}], stream=True
        )
        with pytest.raises(openai.APIError) as err:
            async for chunk in stream:
                if chunk.choices and chunk.choices[0].delta.content:
                    seen.append(chunk.choices[0].delta.content)
    assert seen == ["The answer "]
    assert isinstance(err.value.body, dict) and err.value.body["code"] == "incomplete_response"
    [row] = await gw.orch.ledger.recent(1)
    assert row.outcome == "incomplete"


async def test_a_client_hanging_up_closes_the_providers_stream(gw: Gateway) -> None:
    gw.fake.script(Script(chunks=[f"w{i} " for i in range(200)], tokens_per_second=50))
    async with (
        gw.http() as http,
        http.stream("POST", "/v1/chat/completions", json={"model": "auto", "stream": True, **ONE}) as resp,
    ):
        async for line in resp.aiter_lines():
            if '"content":"w0 "' in line:
                break  # leave with the answer under way: the connection is closed
    await gw.fake.wait_disconnect(timeout=5)
    assert gw.fake.completed_streams == 0


async def test_unknown_model_and_bad_profile_are_client_errors(gw: Gateway) -> None:
    async with gw.openai() as client:
        with pytest.raises(openai.NotFoundError) as missing:
            await client.chat.completions.create(model="openai/gpt-0", messages=[{"role": "user", "content": "q"}])
        with pytest.raises(openai.BadRequestError) as bad:
            await client.chat.completions.create(model="auto:fastest", messages=[{"role": "user", "content": "q"}])
        with pytest.raises(openai.BadRequestError) as tools:
            await client.chat.completions.create(
                model="auto",
                messages=[{"role": "user", "content": "q"}],
                tools=[{"type": "function", "function": {"name": "f", "parameters": {}}}],
            )
    assert missing.value.code == "model_not_found"
    assert bad.value.code == "invalid_request" and "auto:quality" in bad.value.message
    assert tools.value.code == "invalid_request" and "tools" in tools.value.message
    assert gw.fake.requests == []


async def test_models_list_has_auto_profiles_and_the_catalog(gw: Gateway) -> None:
    async with gw.openai() as client:
        models = [m async for m in client.models.list()]
    ids = [m.id for m in models]
    assert ids[:6] == ["auto", "auto:quality", "auto:balanced", "auto:speed", "auto:budget", "auto:long_context"]
    assert set(ids[6:]) == set(gw.orch.catalog.ids())
    luna = next(m for m in models if m.id == "openai/gpt-6-luna")
    assert luna.owned_by == "openai" and luna.model_extra is not None
    assert luna.model_extra["available"] is True and luna.model_extra["pricing"]["output_per_mtok"] > 0
    local = next(m for m in models if m.owned_by == "ollama")
    assert local.model_extra is not None and local.model_extra["available"] is False  # LOCAL_MODEL_ENABLED unset


async def test_rankings_per_profile_and_kind(gw: Gateway) -> None:
    async with gw.http() as http:
        everything = (await http.get("/v1/models/rankings")).json()["data"]
        one = (await http.get("/v1/models/rankings", params={"profile": "quality", "kind": "security"})).json()
        bad = await http.get("/v1/models/rankings", params={"kind": "poetry"})
    assert len(everything) == 5 * 6  # profiles x (five analysis kinds + chat)
    [entry] = one["data"]
    assert entry["profile"] == "quality" and entry["kind"] == "security"
    scores = [m["score"] for m in entry["models"]]
    assert entry["models"][0]["rank"] == 1 and len(scores) > 3
    assert entry["reason"].startswith(f"security → {entry['models'][0]['id']} (quality profile)")
    assert all(m["provider"] in ("openai", "anthropic", "gemini") for m in entry["models"])
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "invalid_request"
