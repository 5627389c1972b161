"""The language server's model calls end to end: inline completion (cache, cancellation,
acceptance), streamed chat (chunks, done, cancel, conversations), status and budget alerts."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from lsprotocol import types
from pygls.exceptions import JsonRpcRequestCancelled

from orchestrator.catalog import Catalog
from tests.fakes.provider_server import FakeProviderServer, Script
from tests.test_lsp_harness import TIMEOUT, Session, arrivals, start_session, stop_session

SOURCE = "def add(a, b):\n    \n\n\ndef sub(a, b):\n    return a - b\n"
CURSOR = types.Position(line=1, character=4)


@pytest.fixture(params=["vscode", "neovim"])
async def lsp(
    request: pytest.FixtureRequest, fake_provider: FakeProviderServer, tmp_path: Path
) -> AsyncIterator[Session]:
    session = await start_session(fake_provider, tmp_path, request.param)
    yield session
    await stop_session(session)


def inline_params(uri: str, position: types.Position = CURSOR) -> types.InlineCompletionParams:
    return types.InlineCompletionParams(
        text_document=types.TextDocumentIdentifier(uri=uri),
        position=position,
        context=types.InlineCompletionContext(trigger_kind=types.InlineCompletionTriggerKind.Automatic),
    )


async def inline(lsp: Session, uri: str, position: types.Position = CURSOR) -> list[types.InlineCompletionItem]:
    result = await asyncio.wait_for(
        lsp.client.text_document_inline_completion_async(inline_params(uri, position)), TIMEOUT
    )
    assert isinstance(result, types.InlineCompletionList)
    return list(result.items)


async def test_inline_completion_fills_the_middle_and_records_acceptance(lsp: Session) -> None:
    lsp.fake.default = Script(text="return a + b")
    uri = lsp.open("app/calc.py", SOURCE)
    [item] = await inline(lsp, uri)
    assert item.insert_text == "return a + b"
    assert item.range == types.Range(start=CURSOR, end=CURSOR)
    prompt = lsp.fake.requests[-1].json["messages"][-1]["content"]
    assert "def add(a, b):\n    </before_cursor>" in prompt and "def sub(a, b)" in prompt  # prefix and suffix
    assert item.command is not None and item.command.command == "orchestrator.acceptCompletion"
    assert await lsp.command(item.command.command, *item.command.arguments or []) == {"recorded": True}
    usage = await lsp.command("orchestrator.usage", {"by": "task"})
    rows = {row["key"]: row for row in usage["rows"]}
    assert rows["completion"]["calls"] == 1 and rows["completion_accepted"]["calls"] == 1


async def test_inline_completion_never_repeats_the_suffix(lsp: Session) -> None:
    lsp.fake.default = Script(text="a + b)\n    return total")
    uri = lsp.open("app/calc.py", "def add(a, b):\n    total = (\n    return total\n")
    [item] = await inline(lsp, uri, types.Position(line=1, character=13))
    assert item.insert_text.rstrip("\n") == "a + b)"  # "return total" is already after the cursor


async def test_typing_on_into_a_completion_is_answered_without_a_call(lsp: Session) -> None:
    lsp.fake.default = Script(text="return a + b")
    uri = lsp.open("app/calc.py", SOURCE)
    await inline(lsp, uri)
    calls = len(lsp.fake.requests)
    lsp.replace(uri, SOURCE.replace("    \n", "    ret\n", 1))
    [item] = await inline(lsp, uri, types.Position(line=1, character=7))
    assert item.insert_text == "urn a + b"
    assert len(lsp.fake.requests) == calls


async def test_a_cancelled_completion_is_not_finished_upstream(lsp: Session) -> None:
    arrived = arrivals(lsp.fake)
    lsp.fake.script(Script(text="return a + b", first_byte_delay=60))
    uri = lsp.open("app/calc.py", SOURCE)
    request = asyncio.ensure_future(
        lsp.client.protocol.send_request_async(types.TEXT_DOCUMENT_INLINE_COMPLETION, inline_params(uri), msg_id="ic-1")
    )
    assert await asyncio.wait_for(arrived.get(), TIMEOUT) == "/v1/chat/completions"
    lsp.client.cancel_request(types.CancelParams(id="ic-1"))
    await lsp.fake.wait_disconnect(timeout=10)  # the HTTP call was closed, long before its 60 s
    with pytest.raises(JsonRpcRequestCancelled):
        await asyncio.wait_for(request, TIMEOUT)
    lsp.fake.default = Script(text="return a + b")
    assert [i.insert_text for i in await inline(lsp, uri)] == ["return a + b"]  # still serving


async def test_a_newer_completion_request_cancels_the_older_call(lsp: Session) -> None:
    arrived = arrivals(lsp.fake)
    lsp.fake.script(Script(text="slow", first_byte_delay=60), Script(text="return a + b"))
    uri = lsp.open("app/calc.py", SOURCE)
    older = asyncio.ensure_future(inline(lsp, uri))
    await asyncio.wait_for(arrived.get(), TIMEOUT)
    newer = await inline(lsp, uri, types.Position(line=1, character=3))
    assert [i.insert_text for i in newer] == ["return a + b"]
    assert await asyncio.wait_for(older, TIMEOUT) == []  # answered, with nothing
    assert lsp.fake.disconnects == 1


async def test_chat_streams_ordered_chunks_then_done_and_continues(lsp: Session) -> None:
    lsp.fake.script(Script(chunks=["Use ", "sum() ", "instead ", "of the loop."], tokens_per_second=200))
    uri = lsp.open("app/calc.py", SOURCE)
    mark = lsp.inbox.mark()
    answer = await lsp.command(
        "orchestrator.chat",
        {
            "message": "How do I make add faster?",
            "document": uri,
            "range": {"start": {"line": 0, "character": 0}, "end": {"line": 1, "character": 4}},
        },
    )
    chunks = [p for m, p in lsp.inbox.items[mark:] if m == "orchestrator/chatChunk"]
    assert [c["delta"] for c in chunks] == ["Use ", "sum() ", "instead ", "of the loop."]
    assert [c["index"] for c in chunks] == [0, 1, 2, 3]
    done = await lsp.inbox.wait("orchestrator/chatDone", since=mark)
    methods = [m for m, _ in lsp.inbox.items[mark:] if m.startswith("orchestrator/chat")]
    assert methods[-1] == "orchestrator/chatDone"  # after every chunk
    cid = done["conversationId"]
    assert all(c["conversationId"] == cid for c in chunks)
    assert done["model"].startswith("openai/") and done["reason"] and done["usage"]["outputTokens"] == 4
    assert done["costUsd"] > 0 and not done["incomplete"]
    assert answer["text"] == "Use sum() instead of the loop." and answer["conversationId"] == cid
    kinds = [p.value["kind"] for m, p in lsp.inbox.items[mark:] if m == types.PROGRESS]
    assert kinds[0] == "begin" and kinds[-1] == "end"
    context = lsp.fake.requests[-1].json["messages"][-1]["content"]
    assert "How do I make add faster?" in context and "def add(a, b):" in context

    lsp.fake.script(Script(chunks=["Yes, ", "sum ", "is ", "fine."]))
    await lsp.command("orchestrator.chat", {"message": "And for floats?", "conversationId": cid})
    history = [m["content"] for m in lsp.fake.requests[-1].json["messages"] if m["role"] != "system"]
    assert len(history) == 3 and history[1] == "Use sum() instead of the loop." and history[2] == "And for floats?"
    listed = await lsp.command("orchestrator.conversations", {})
    assert listed[0]["id"] == cid and listed[0]["messageCount"] == 4
    stored = await lsp.command("orchestrator.conversation", {"conversationId": cid})
    assert [m["role"] for m in stored["messages"]] == ["user", "assistant", "user", "assistant"]


async def test_a_cancelled_chat_stops_the_upstream_stream(lsp: Session) -> None:
    lsp.fake.script(Script(chunks=[f"w{i} " for i in range(200)], tokens_per_second=4))
    mark = lsp.inbox.mark()
    params = types.ExecuteCommandParams(command="orchestrator.chat", arguments=[{"message": "Tell me a long story"}])
    request = asyncio.ensure_future(
        lsp.client.protocol.send_request_async(types.WORKSPACE_EXECUTE_COMMAND, params, msg_id="chat-1")
    )
    await lsp.inbox.wait("orchestrator/chatChunk", since=mark)
    lsp.client.cancel_request(types.CancelParams(id="chat-1"))
    done = await lsp.inbox.wait("orchestrator/chatDone", since=mark)
    assert done["cancelled"] is True and done["chunks"] < 200
    await lsp.fake.wait_disconnect(timeout=10)
    assert lsp.fake.completed_streams == 0
    with pytest.raises(JsonRpcRequestCancelled):
        await asyncio.wait_for(request, TIMEOUT)
    assert await lsp.command("orchestrator.setProfile", {"profile": "speed"}) == {"profile": "speed"}


async def test_cancelling_the_chat_progress_stops_it(lsp: Session) -> None:
    lsp.fake.script(Script(chunks=[f"w{i} " for i in range(200)], tokens_per_second=4))
    mark = lsp.inbox.mark()
    request = asyncio.ensure_future(lsp.command("orchestrator.chat", {"message": "Tell me a long story"}))
    begin = await lsp.inbox.wait(types.PROGRESS, lambda p: p.value.get("kind") == "begin", since=mark)
    assert begin.value["cancellable"] is True
    await lsp.inbox.wait("orchestrator/chatChunk", since=mark)
    lsp.client.window_work_done_progress_cancel(types.WorkDoneProgressCancelParams(token=begin.token))
    done = await lsp.inbox.wait("orchestrator/chatDone", since=mark)
    assert done["cancelled"] is True
    await lsp.fake.wait_disconnect(timeout=10)
    with pytest.raises(JsonRpcRequestCancelled):
        await request  # answered, not left hanging
    end = await lsp.inbox.wait(types.PROGRESS, lambda p: p.value.get("kind") == "end", since=mark)
    assert end.value["message"] == "cancelled"


async def test_status_after_each_call_and_budget_alerts(fake_provider: FakeProviderServer, tmp_path: Path) -> None:
    model = Catalog.load({}).get("openai/gpt-6.1-terra")
    budget = 0.02
    spend = model.cost(1000, 2000)  # what the call below costs
    assert 0.5 * budget <= spend < 0.8 * budget
    lsp = await start_session(fake_provider, tmp_path, "vscode", AI_MONTHLY_BUDGET=str(budget))
    try:
        first = await lsp.ready()
        assert first["budgetUsd"] == budget and first["monthSpendUsd"] == 0 and first["alertLevel"] == 0
        fake_provider.script(Script(chunks=["a", "b", "c"], usage=(1000, 2000)))
        mark = lsp.inbox.mark()
        done = await lsp.command("orchestrator.chat", {"message": "hi", "model": "openai/gpt-6.1-terra"})
        assert done["costUsd"] == pytest.approx(spend)
        status = await lsp.inbox.wait("orchestrator/status", lambda p: p["monthSpendUsd"] > 0, since=mark)
        assert status["monthSpendUsd"] == pytest.approx(spend) and status["alertLevel"] == 50
        alert = await lsp.inbox.wait(types.WINDOW_SHOW_MESSAGE, lambda p: "budget" in p.message, since=mark)
        assert alert.type == types.MessageType.Warning and "50%" in alert.message
        usage = await lsp.command("orchestrator.usage")
        assert usage["budget"]["alertLevel"] == 50 and usage["rows"][0]["key"] == "openai"
        models = {m["id"]: m for m in await lsp.command("orchestrator.models")}
        assert models["openai/gpt-6.1-terra"]["available"] and not models["anthropic/claude-opus-5-5"]["available"]
    finally:
        await stop_session(lsp)
