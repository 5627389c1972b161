"""The language server end to end, as VS Code and as Neovim: diagnostics from both producers,
push and pull, quick fixes and lazily resolved AI actions, commands, configuration."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from lsprotocol import types
from pygls.exceptions import JsonRpcContentModified, JsonRpcException, JsonRpcInvalidRequest

from tests.fakes.provider_server import FakeProviderServer, Script
from tests.test_lsp_harness import (
    AI_FINDING,
    FLAWED,
    TIMEOUT,
    Session,
    apply_edits,
    arrivals,
    capabilities,
    findings_json,
    raw_request,
    start_session,
    stop_session,
)

INIT = {"orchestrator": {"diagnosticsDelayMs": 100}}


@pytest.fixture(params=["vscode", "neovim"])
async def lsp(
    request: pytest.FixtureRequest, fake_provider: FakeProviderServer, tmp_path: Path
) -> AsyncIterator[Session]:
    session = await start_session(fake_provider, tmp_path, request.param, init_options=INIT)
    yield session
    await stop_session(session)


def producers(diags: list[types.Diagnostic]) -> set[str]:
    return {d.data["producer"] for d in diags if isinstance(d.data, dict)}


def codes(diags: list[types.Diagnostic]) -> set[Any]:
    return {d.code for d in diags}


async def open_flawed(lsp: Session, *, with_ai: bool = True) -> tuple[str, list[types.Diagnostic]]:
    lsp.fake.default = Script(text=findings_json(AI_FINDING))
    uri = lsp.open("app/flawed.py", FLAWED)
    diags = await lsp.diagnostics(uri, lambda ds: "builtin" in producers(ds))
    if with_ai:
        lsp.save(uri)
        diags = await lsp.diagnostics(uri, lambda ds: producers(ds) == {"builtin", "ai"})
    return uri, diags


async def actions_for(
    lsp: Session, uri: str, diag: types.Diagnostic | None, rng: types.Range | None = None
) -> dict[str, dict[str, Any]]:
    """The actions as JSON, by title. (lsprotocol's converter would read a CodeAction that
    carries a `command` as a Command, so the list is taken raw, as an editor sees it.)"""
    convert = lsp.client.protocol._converter
    params = types.CodeActionParams(
        text_document=types.TextDocumentIdentifier(uri=uri),
        range=rng or (diag.range if diag else types.Range(start=types.Position(0, 0), end=types.Position(0, 0))),
        context=types.CodeActionContext(diagnostics=[diag] if diag else []),
    )
    result = await raw_request(
        lsp.client, f"actions-{id(params)}", "textDocument/codeAction", convert.unstructure(params)
    )
    return {a["title"]: a for a in result}


async def resolve(lsp: Session, action: dict[str, Any]) -> types.CodeAction:
    convert = lsp.client.protocol._converter
    return await lsp.client.code_action_resolve_async(convert.structure(action, types.CodeAction))


def edit_of(lsp: Session, action: dict[str, Any] | types.CodeAction) -> types.WorkspaceEdit:
    edit = action["edit"] if isinstance(action, dict) else action.edit
    assert edit is not None, action
    return (
        edit
        if isinstance(edit, types.WorkspaceEdit)
        else lsp.client.protocol._converter.structure(edit, types.WorkspaceEdit)
    )


async def test_diagnostics_from_both_producers_on_the_expected_lines(lsp: Session) -> None:
    uri, builtin = await open_flawed(lsp, with_ai=False)
    by_code = {d.code: d for d in builtin}
    assert by_code["F401"].range.start.line == 0
    assert by_code["B602"].range.start.line == 5
    assert by_code["B602"].source == "orchestrator/security"
    assert by_code["B602"].severity == types.DiagnosticSeverity.Error
    assert by_code["F401"].source == "orchestrator/style"
    # The column after "👋" and "ö": UTF-16 for VS Code, UTF-8 for Neovim (its first preference).
    assert lsp.encoding == {"vscode": "utf-16", "neovim": "utf-8"}[lsp.name]
    eval_line = FLAWED.splitlines()[16]
    assert by_code["B307"].range.start.character == lsp.column(eval_line, eval_line.index("eval"))
    # A link where the client shows one (VS Code declares codeDescriptionSupport, Neovim 0.11 does not).
    href = by_code["F401"].code_description.href if by_code["F401"].code_description else None
    assert href == ("https://docs.astral.sh/ruff/rules/unused-import" if lsp.name == "vscode" else None)
    assert by_code["F401"].data["finding"]["fix"]["edits"]  # what the quick fix needs

    lsp.save(uri)
    both = await lsp.diagnostics(uri, lambda ds: producers(ds) == {"builtin", "ai"})
    ai = [d for d in both if d.data["producer"] == "ai"]
    assert [(d.range.start.line, d.source) for d in ai] == [(11, "orchestrator/performance")]
    assert ai[0].code == "ai-performance"
    assert {"F401", "B602", "B307"} <= codes(both)  # the AI run did not wipe the built-in results
    analysis = [r for r in lsp.fake.requests if r.format == "openai"]
    assert analysis and all(r.json["response_format"]["type"] == "json_object" for r in analysis)


async def test_edits_rerun_builtin_once_debounced_and_keep_ai_results(lsp: Session) -> None:
    uri, _ = await open_flawed(lsp)
    mark = lsp.inbox.mark()
    fixed_shell = FLAWED.replace("subprocess.call(cmd, shell=True)", "subprocess.call(cmd)")
    for text in (FLAWED + "\n", FLAWED + "\n\n", fixed_shell):  # three quick edits: the first two are cancelled
        lsp.replace(uri, text)
    after = await lsp.diagnostics(uri, lambda ds: True, since=mark)
    published = [p for m, p in lsp.inbox.items[mark:] if m == types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS]
    assert [p.version for p in published] == [4]
    assert "B602" not in codes(after)
    assert "ai" in producers(after)  # kept until the next AI run


async def test_ai_results_follow_edits_made_while_the_model_ran(lsp: Session) -> None:
    uri, _ = await open_flawed(lsp, with_ai=False)
    arrived = arrivals(lsp.fake)
    lsp.fake.default = Script(text=findings_json(AI_FINDING), first_byte_delay=0.5)
    lsp.save(uri)
    await asyncio.wait_for(arrived.get(), TIMEOUT)
    lsp.replace(uri, '"""Sums and runs."""\n\n' + FLAWED)  # two lines above, while the model answers
    moved = await lsp.diagnostics(uri, lambda ds: "ai" in producers(ds))
    assert [d.range.start.line for d in moved if d.data["producer"] == "ai"] == [13]


async def test_pull_diagnostics_answer_the_same_results(lsp: Session) -> None:
    uri, pushed = await open_flawed(lsp)
    report = await lsp.client.text_document_diagnostic_async(
        types.DocumentDiagnosticParams(text_document=types.TextDocumentIdentifier(uri=uri))
    )
    assert isinstance(report, types.RelatedFullDocumentDiagnosticReport)
    assert sorted(codes(report.items), key=str) == sorted(codes(pushed), key=str)
    again = await lsp.client.text_document_diagnostic_async(
        types.DocumentDiagnosticParams(
            text_document=types.TextDocumentIdentifier(uri=uri), previous_result_id=report.result_id
        )
    )
    assert isinstance(again, types.RelatedUnchangedDocumentDiagnosticReport)


async def test_a_pulling_client_is_told_to_pull_again(fake_provider: FakeProviderServer, tmp_path: Path) -> None:
    caps = capabilities("neovim")
    caps.workspace.diagnostics = types.DiagnosticWorkspaceClientCapabilities(refresh_support=True)  # type: ignore[union-attr]
    lsp = await start_session(fake_provider, tmp_path, "neovim", init_options=INIT, caps=caps)
    try:
        fake_provider.default = Script(text=findings_json(AI_FINDING))
        uri = lsp.open("app/flawed.py", FLAWED)
        report = await lsp.client.text_document_diagnostic_async(
            types.DocumentDiagnosticParams(text_document=types.TextDocumentIdentifier(uri=uri))
        )
        assert {"F401", "B602"} <= codes(report.items)  # computed on demand
        mark = lsp.inbox.mark()
        lsp.save(uri)
        await lsp.inbox.wait(types.WORKSPACE_DIAGNOSTIC_REFRESH, since=mark)
        report = await lsp.client.text_document_diagnostic_async(
            types.DocumentDiagnosticParams(text_document=types.TextDocumentIdentifier(uri=uri))
        )
        assert "ai-performance" in codes(report.items)
        assert not lsp.inbox.all(types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)  # pulled, never pushed twice
    finally:
        await stop_session(lsp)


async def test_quick_fix_applies_the_findings_own_edit(lsp: Session) -> None:
    uri, diags = await open_flawed(lsp, with_ai=False)
    unused = next(d for d in diags if d.code == "F401")
    actions = await actions_for(lsp, uri, unused)
    fix = actions["Fix: Remove unused import: `os` (F401)"]
    assert fix["kind"] == "quickfix" and fix["isPreferred"] is True
    assert {"Fix with AI: `os` imported but unused", "Explain F401"} <= set(actions)
    assert actions["Explain F401"]["command"]["command"] == "orchestrator.explain"
    changes = edit_of(lsp, fix).changes
    assert changes is not None
    fixed = apply_edits(FLAWED, changes[uri], lsp.encoding)
    assert fixed == FLAWED.removeprefix("import os\n")
    lsp.replace(uri, fixed)
    after = await lsp.diagnostics(uri, lambda ds: "builtin" in producers(ds) and ds[0].data["version"] == 2)
    assert "F401" not in codes(after) and "B602" in codes(after)


async def test_fix_with_ai_is_resolved_lazily_with_progress(lsp: Session) -> None:
    uri, diags = await open_flawed(lsp)
    finding = next(d for d in diags if d.code == "ai-performance")
    calls = len(lsp.fake.requests)
    actions = await actions_for(lsp, uri, finding)
    lazy = next(a for t, a in actions.items() if t.startswith("Fix with AI"))
    assert "edit" not in lazy and lazy["data"]["action"] == "fix"
    assert len(lsp.fake.requests) == calls  # listing actions asks no model
    lsp.fake.script(Script(text=json.dumps({"replacement": "        out += x", "explanation": "in place"})))
    mark = lsp.inbox.mark()
    changes = edit_of(lsp, await resolve(lsp, lazy)).changes
    assert changes is not None
    fixed = apply_edits(FLAWED, changes[uri], lsp.encoding)
    assert fixed.splitlines()[11] == "        out += x" and fixed.count("\n") == FLAWED.count("\n")
    progress = [p.value for p in lsp.inbox.all(types.PROGRESS)[-2:]]
    assert [v["kind"] for v in progress] == ["begin", "end"] and progress[0]["title"].startswith("Fixing with AI")
    await lsp.inbox.wait(types.WINDOW_WORK_DONE_PROGRESS_CREATE, since=mark)
    assert lsp.fake.requests[-1].json["messages"][-1]["content"].count("out = out + x") >= 1


async def test_stale_action_is_refused_not_misapplied(lsp: Session) -> None:
    uri, diags = await open_flawed(lsp)
    finding = next(d for d in diags if d.code == "ai-performance")
    lazy = next(a for t, a in (await actions_for(lsp, uri, finding)).items() if t.startswith("Fix with AI"))
    lsp.replace(uri, FLAWED + "\n")
    with pytest.raises(JsonRpcException, match="changed since") as refused:
        await resolve(lsp, lazy)
    assert refused.value.code == JsonRpcContentModified.CODE


async def test_selection_actions_refactor_tests_explain_and_analyze(lsp: Session) -> None:
    uri, _ = await open_flawed(lsp, with_ai=False)
    selection = types.Range(start=types.Position(line=9, character=0), end=types.Position(line=12, character=14))
    actions = await actions_for(lsp, uri, None, selection)
    assert {"Refactor selection with AI", "Explain selection", "Generate tests for total"} <= set(actions)
    assert {f"Analyze selection for {k}" for k in ("security", "performance", "style")} <= set(actions)

    tests_code = "from app.flawed import total\n\n\ndef test_total():\n    assert total([1, 2]) == 3\n"
    lsp.fake.script(Script(text=f"```python\n{tests_code}```"))
    changes = edit_of(lsp, await resolve(lsp, actions["Generate tests for total"])).document_changes
    assert changes is not None
    create, edit = changes
    assert isinstance(create, types.CreateFile) and create.uri == lsp.uri("tests/test_flawed.py")
    assert isinstance(edit, types.TextDocumentEdit) and edit.edits[0].new_text == tests_code

    lsp.fake.script(Script(text=json.dumps({"replacement": "    return sum(items)\n", "explanation": "sum"})))
    edits = edit_of(lsp, await resolve(lsp, actions["Refactor selection with AI"])).changes
    assert edits is not None
    text = apply_edits(FLAWED, edits[uri], lsp.encoding)
    assert "def total(items):\n    return sum(items)\n\n\ndef greet" in text

    command = actions["Analyze selection for performance"]["command"]
    lsp.fake.script(Script(text=findings_json(AI_FINDING)))
    summary = await lsp.command(command["command"], *command["arguments"])
    assert summary["findings"] == 1 and summary["models"]
    await lsp.diagnostics(uri, lambda ds: "ai-performance" in codes(ds))

    lsp.fake.script(Script(text="It adds the items one by one."))
    command = actions["Explain selection"]["command"]
    answer = await lsp.command(command["command"], *command["arguments"])
    assert answer["text"] == "It adds the items one by one."
    await lsp.inbox.wait(types.WINDOW_SHOW_MESSAGE, lambda p: p.message == answer["text"])


async def test_configuration_from_the_client_takes_effect(lsp: Session) -> None:
    uri, diags = await open_flawed(lsp, with_ai=False)
    assert {"orchestrator/security", "orchestrator/style"} <= {d.source for d in diags}
    mark = lsp.inbox.mark()
    lsp.client.workspace_did_change_configuration(
        types.DidChangeConfigurationParams(settings={"orchestrator": {"analysisKinds": ["security"]}})
    )
    only_security = await lsp.diagnostics(uri, lambda ds: True, since=mark)
    assert {d.source for d in only_security} == {"orchestrator/security"}

    # The pull model (what VS Code does): settings=null, the server asks workspace/configuration.
    lsp.client.set_configuration({"analysisKinds": ["style"], "profile": "speed"}, section="orchestrator")
    mark = lsp.inbox.mark()
    lsp.client.workspace_did_change_configuration(types.DidChangeConfigurationParams(settings=None))
    only_style = await lsp.diagnostics(uri, lambda ds: True, since=mark)
    assert {d.source for d in only_style} == {"orchestrator/style"}
    status = await lsp.inbox.wait("orchestrator/status", lambda p: p["profile"] == "speed", since=mark)
    assert status["alertLevel"] == 0

    lsp.client.workspace_did_change_configuration(
        types.DidChangeConfigurationParams(settings={"orchestrator": {"aiDiagnostics": "off"}})
    )
    await lsp.inbox.wait("orchestrator/status", lambda p: p["profile"] == "balanced", since=mark)
    with pytest.raises(JsonRpcInvalidRequest, match="AI analysis is off"):
        await lsp.command("orchestrator.analyze", {"uri": uri})
    selection = types.Range(start=types.Position(line=9, character=0), end=types.Position(line=12, character=14))
    assert not [t for t in await actions_for(lsp, uri, None, selection) if t.startswith("Analyze selection")]


async def test_bad_configuration_values_fall_back_with_a_warning(
    fake_provider: FakeProviderServer, tmp_path: Path
) -> None:
    options = {
        "profile": "fastest",
        "diagnosticsDelayMs": -5,
        "inlineCompletion": {"maxTokens": "many"},
        "settings": {"cache": {"ttl": 5}},
        "monthlyBudget": -1,
    }
    lsp = await start_session(fake_provider, tmp_path, "vscode", init_options=options)
    try:
        status = await lsp.ready()
        assert status["profile"] == "balanced" and status["budgetUsd"] is None  # defaults in force
        warnings = [m.message for m in lsp.inbox.all(types.WINDOW_SHOW_MESSAGE) if m.type == types.MessageType.Warning]
        for key in ("orchestrator.profile", "diagnosticsDelayMs", "inlineCompletion.maxTokens", "cache.ttl", "budget"):
            assert any(key in w for w in warnings), (key, warnings)
        uri = lsp.open("app/flawed.py", FLAWED)
        await lsp.diagnostics(uri, lambda ds: "B602" in codes(ds))  # still serving
        assert await lsp.command("orchestrator.setProfile", "quality") == {"profile": "quality"}
        await lsp.inbox.wait("orchestrator/status", lambda p: p["profile"] == "quality")
    finally:
        await stop_session(lsp)
