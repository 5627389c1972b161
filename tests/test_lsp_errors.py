"""Bad input to the language server: each gets an error response or a message, and the server
answers the next request."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from lsprotocol import types
from pygls.exceptions import JsonRpcException, JsonRpcInvalidParams, JsonRpcInvalidRequest
from pygls.lsp.client import LanguageClient as PlainClient

from tests.fakes.provider_server import FakeProviderServer, Script
from tests.test_lsp_harness import (
    FLAWED,
    TIMEOUT,
    Session,
    capabilities,
    raw_request,
    server_env,
    start_session,
    stop_session,
)

NOWHERE = "file:///nowhere/never_opened.py"


@pytest.fixture(params=["vscode", "neovim"])
async def lsp(
    request: pytest.FixtureRequest, fake_provider: FakeProviderServer, tmp_path: Path
) -> AsyncIterator[Session]:
    session = await start_session(fake_provider, tmp_path, request.param)
    yield session
    await stop_session(session)


async def still_serving(lsp: Session) -> None:
    """The next request is answered."""
    assert await lsp.command("orchestrator.setProfile", "speed") == {"profile": "speed"}


async def test_malformed_params_get_an_error_response(lsp: Session) -> None:
    with pytest.raises(JsonRpcInvalidParams, match="textDocument/codeAction"):
        await raw_request(lsp.client, "bad-1", "textDocument/codeAction", {"textDocument": 42, "range": "everything"})
    with pytest.raises(JsonRpcInvalidParams):
        await raw_request(lsp.client, "bad-2", "textDocument/inlineCompletion", None)
    await still_serving(lsp)
    mark = lsp.inbox.mark()
    lsp.client.protocol._send_data({"jsonrpc": "2.0", "method": "textDocument/didOpen", "params": {"nope": 1}})
    warning = await lsp.inbox.wait(types.WINDOW_SHOW_MESSAGE, since=mark)
    assert "malformed textDocument/didOpen" in warning.message
    await still_serving(lsp)


async def test_bad_command_arguments_and_unknown_commands(lsp: Session) -> None:
    with pytest.raises(JsonRpcInvalidParams, match="not defined"):
        await lsp.command("orchestrator.noSuchCommand")
    with pytest.raises(JsonRpcInvalidParams, match="non-empty 'message'"):
        await lsp.command("orchestrator.chat", {"message": ""})
    with pytest.raises(JsonRpcInvalidParams, match="expects one object"):
        await lsp.command("orchestrator.chat", "hello", "world")
    with pytest.raises(JsonRpcInvalidParams, match="expects one of"):
        await lsp.command("orchestrator.setProfile", "fastest")
    with pytest.raises(JsonRpcInvalidParams, match="no conversation"):
        await lsp.command("orchestrator.chat", {"message": "hi", "conversationId": "0" * 32})
    with pytest.raises(JsonRpcInvalidParams, match="kinds"):
        await lsp.command("orchestrator.analyze", {"uri": NOWHERE, "kinds": ["astrology"]})
    with pytest.raises(JsonRpcInvalidParams, match="unknown grouping"):
        await lsp.command("orchestrator.usage", {"by": "colour"})
    await still_serving(lsp)


async def test_a_document_the_server_never_saw(lsp: Session) -> None:
    doc = types.TextDocumentIdentifier(uri=NOWHERE)
    here = types.Range(start=types.Position(line=0, character=0), end=types.Position(line=0, character=0))
    requests = [
        lsp.client.text_document_code_action_async(
            types.CodeActionParams(text_document=doc, range=here, context=types.CodeActionContext(diagnostics=[]))
        ),
        lsp.client.text_document_inline_completion_async(
            types.InlineCompletionParams(
                text_document=doc,
                position=here.start,
                context=types.InlineCompletionContext(trigger_kind=types.InlineCompletionTriggerKind.Invoked),
            )
        ),
        lsp.client.text_document_diagnostic_async(types.DocumentDiagnosticParams(text_document=doc)),
        lsp.command("orchestrator.analyze", {"uri": NOWHERE}),
        lsp.command("orchestrator.chat", {"message": "hi", "document": NOWHERE}),
    ]
    for request in requests:
        with pytest.raises(JsonRpcInvalidParams, match="document not open"):
            await asyncio.wait_for(request, TIMEOUT)
    mark = lsp.inbox.mark()
    lsp.client.text_document_did_change(
        types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=NOWHERE, version=2),
            content_changes=[types.TextDocumentContentChangeWholeDocument(text="x = 1\n")],
        )
    )
    warning = await lsp.inbox.wait(types.WINDOW_SHOW_MESSAGE, since=mark)
    assert "not open" in warning.message
    await still_serving(lsp)


async def test_a_10_mb_file_is_not_analyzed_but_still_served(lsp: Session) -> None:
    line = "value = compute(value) + 1  # padding padding padding padding\n"
    text = line * (10 * 1024 * 1024 // len(line) + 1)
    uri = lsp.open("app/huge.py", text)
    warning = await lsp.inbox.wait(types.WINDOW_SHOW_MESSAGE, lambda p: "huge.py" in p.message)
    assert "not analyzed" in warning.message and "10.0 MB" in warning.message
    report = await lsp.client.text_document_diagnostic_async(
        types.DocumentDiagnosticParams(text_document=types.TextDocumentIdentifier(uri=uri))
    )
    assert list(report.items) == []
    lsp.fake.default = Script(text="value = 0")
    last = text.count("\n")
    completion = await asyncio.wait_for(
        lsp.client.text_document_inline_completion_async(
            types.InlineCompletionParams(
                text_document=types.TextDocumentIdentifier(uri=uri),
                position=types.Position(line=last, character=0),
                context=types.InlineCompletionContext(trigger_kind=types.InlineCompletionTriggerKind.Invoked),
            )
        ),
        TIMEOUT,
    )
    assert [i.insert_text for i in completion.items] == ["value = 0"]
    assert len(json.dumps(lsp.fake.requests[-1].json)) < 100_000  # the prompt holds the text near the cursor
    with pytest.raises(JsonRpcInvalidRequest, match="not analyzed"):
        await lsp.command("orchestrator.analyze", {"uri": uri})
    await still_serving(lsp)


async def test_binary_content_is_not_analyzed(lsp: Session) -> None:
    uri = lsp.open("app/blob.py", "\x00\x01\x02PK\x03\x04\x00" * 100, language="python")
    warning = await lsp.inbox.wait(types.WINDOW_SHOW_MESSAGE, lambda p: "blob.py" in p.message)
    assert "binary" in warning.message
    report = await lsp.client.text_document_diagnostic_async(
        types.DocumentDiagnosticParams(text_document=types.TextDocumentIdentifier(uri=uri))
    )
    assert list(report.items) == []
    with pytest.raises(JsonRpcInvalidRequest, match="binary"):
        await lsp.command("orchestrator.explain", {"uri": uri})
    await still_serving(lsp)


async def test_a_message_that_is_not_json(lsp: Session) -> None:
    mark = lsp.inbox.mark()
    body = b'{"jsonrpc": "2.0", "id": 7, "method": oops}'
    lsp.client.protocol.writer.write(b"Content-Length: %d\r\n\r\n%s" % (len(body), body))  # type: ignore[union-attr]
    error = await lsp.inbox.wait(types.WINDOW_SHOW_MESSAGE, since=mark)
    assert error.type == types.MessageType.Error
    await still_serving(lsp)


async def test_provider_failure_is_an_error_response(lsp: Session) -> None:
    lsp.fake.script(*[Script(error="auth")] * 3)
    with pytest.raises(JsonRpcException, match="all providers unavailable") as failed:
        await lsp.command("orchestrator.chat", {"message": "hi"})
    assert failed.value.code == -32803  # RequestFailed
    await still_serving(lsp)


async def test_a_broken_orchestrator_toml_is_skipped_with_a_message(
    fake_provider: FakeProviderServer, tmp_path: Path
) -> None:
    (tmp_path / "ws").mkdir()
    (tmp_path / "ws" / "orchestrator.toml").write_text("[cache]\nttl = 5\n")
    lsp = await start_session(fake_provider, tmp_path, "neovim")
    try:
        status = await lsp.ready()
        assert status["providers"] == ["openai"]  # the environment still applies
        error = await lsp.inbox.wait(types.WINDOW_SHOW_MESSAGE, lambda p: "orchestrator.toml" in p.message)
        assert "cache.ttl" in error.message and "ignored" in error.message
        lsp.fake.script(Script(chunks=["fine"]))
        assert (await lsp.command("orchestrator.chat", {"message": "hi"}))["text"] == "fine"
    finally:
        await stop_session(lsp)


async def test_tcp_transport(fake_provider: FakeProviderServer, tmp_path: Path) -> None:
    """`--tcp HOST:PORT` serves one editor over a socket (port 0: the log names the port)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "server.cli.lsp",
        "--tcp",
        "127.0.0.1:0",
        env=server_env(fake_provider, tmp_path),
        stdin=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    client = PlainClient("tcp-test", "1")
    try:
        assert proc.stderr is not None
        line = (await asyncio.wait_for(proc.stderr.readline(), TIMEOUT)).decode()
        assert "listening on 127.0.0.1:" in line, line
        port = int(line.rsplit(":", 1)[1])
        await client.start_tcp("127.0.0.1", port)
        result = await asyncio.wait_for(
            client.initialize_async(
                types.InitializeParams(capabilities=capabilities("neovim"), process_id=os.getpid())
            ),
            TIMEOUT,
        )
        assert result.server_info is not None and result.server_info.name == "orchestrator"
        client.initialized(types.InitializedParams())
        await asyncio.wait_for(client.shutdown_async(None), TIMEOUT)
        client.exit(None)
        assert await asyncio.wait_for(proc.wait(), TIMEOUT) == 0
    finally:
        await client.stop()
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


def test_flawed_fixture_is_python() -> None:
    compile(FLAWED, "flawed.py", "exec")
