"""Code actions: quick fixes that apply a finding's own edit, and model-backed actions
("Fix with AI", "Refactor selection", "Generate tests for this function") whose edits are
computed only when chosen, in `codeAction/resolve`, with work-done progress meanwhile.
"Explain" and "Analyze selection for <kind>" run as commands.

Listing actions is cheap (an editor asks on every cursor move): no model is called until
the user picks one. Clients that cannot resolve edits get the same actions as the command
`orchestrator.applyAction`, which computes the edit and sends `workspace/applyEdit`.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lsprotocol import types
from pygls.exceptions import JsonRpcContentModified, JsonRpcInvalidParams
from pygls.uris import from_fs_path, to_fs_path

from .positions import range_from_client, range_to_client, split_lines, to_client
from .protocol import Unfit, json_range, range_json, rpc, value_of

if TYPE_CHECKING:
    from pygls.workspace import TextDocument

    from .server import OrchestratorServer

APPLY = "orchestrator.applyAction"
LAZY = ("fix", "refactor", "tests", "quickfix")
_DEF = re.compile(r"^(\s*)(?:async\s+)?def\s+([A-Za-z_]\w*)")
_KINDS = [types.CodeActionKind.QuickFix, types.CodeActionKind.RefactorRewrite, types.CodeActionKind.Empty]


def register(ls: OrchestratorServer) -> None:
    @ls.feature(
        types.TEXT_DOCUMENT_CODE_ACTION, types.CodeActionOptions(code_action_kinds=_KINDS, resolve_provider=True)
    )
    @rpc
    async def code_action(params: types.CodeActionParams) -> list[types.CodeAction | types.Command]:
        doc = ls.document(params.text_document.uri)
        try:
            ls.check(doc)
        except Unfit:
            return []
        actions = _filter(_actions(ls, doc, params), params.context.only)
        if not ls.supports("text_document.code_action.code_action_literal_support"):
            return [_as_command(a) for a in actions]
        if "edit" not in (ls.supports("text_document.code_action.resolve_support.properties") or []):
            for action in actions:
                if action.data is not None and action.edit is None and action.command is None:
                    action.command = types.Command(title=action.title, command=APPLY, arguments=[action.data])
        return actions

    @ls.feature(types.CODE_ACTION_RESOLVE)
    @rpc
    async def resolve(action: types.CodeAction) -> types.CodeAction:
        if action.edit is None and isinstance(action.data, dict) and action.data.get("action") in LAZY:
            action.edit = await compute_edit(ls, action.data)
        return action

    @ls.command(APPLY)
    @rpc
    async def apply(*args: Any) -> dict[str, Any]:
        data = args[0] if args and isinstance(args[0], dict) else None
        if data is None or data.get("action") not in LAZY:
            raise JsonRpcInvalidParams(f"{APPLY} expects one object with an 'action' of: {', '.join(LAZY)}")
        edit = await compute_edit(ls, data)
        result = await ls.workspace_apply_edit_async(types.ApplyWorkspaceEditParams(edit=edit, label="Orchestrator"))
        return {"applied": bool(result.applied), "reason": result.failure_reason}


def _actions(ls: OrchestratorServer, doc: TextDocument, params: types.CodeActionParams) -> list[types.CodeAction]:
    uri, version = doc.uri, doc.version
    lines = split_lines(doc.source)
    out: list[types.CodeAction] = []
    known = {_key(d): (f, d) for _p, f, d in ls.diagnostics.findings(uri)}
    for diag in params.context.diagnostics:
        data = diag.data if isinstance(diag.data, dict) and isinstance(diag.data.get("finding"), dict) else None
        if data is None:  # a client without dataSupport: find the finding by what it echoed
            match = known.get(_key(diag))
            if match is None:
                continue
            data = match[1].data
        finding = data["finding"]
        rule = finding.get("rule", "")
        base = {"uri": uri, "version": version, "finding": finding}
        if finding.get("fix") and data.get("version") == version:
            out.append(
                types.CodeAction(
                    title=f"Fix: {finding['fix'].get('description', 'apply the suggested change')} ({rule})",
                    kind=types.CodeActionKind.QuickFix,
                    diagnostics=[diag],
                    is_preferred=True,
                    edit=_edit_of(ls, uri, lines, finding["fix"].get("edits", [])),
                    data={"action": "quickfix", **base},
                )
            )
        out.append(
            types.CodeAction(
                title=f"Fix with AI: {_short(finding.get('message', rule))}",
                kind=types.CodeActionKind.QuickFix,
                diagnostics=[diag],
                data={"action": "fix", **base},
            )
        )
        explain = {"uri": uri, "range": range_json(diag.range)}
        out.append(
            types.CodeAction(
                title=f"Explain {rule}",
                kind=types.CodeActionKind.QuickFix,
                diagnostics=[diag],
                command=types.Command(title=f"Explain {rule}", command="orchestrator.explain", arguments=[explain]),
            )
        )
    sel = params.range
    selected = range_json(sel)
    if (sel.start.line, sel.start.character) != (sel.end.line, sel.end.character):
        out.append(
            types.CodeAction(
                title="Refactor selection with AI",
                kind=types.CodeActionKind.RefactorRewrite,
                data={"action": "refactor", "uri": uri, "version": version, "range": selected},
            )
        )
        out.append(
            types.CodeAction(
                title="Explain selection",
                kind=types.CodeActionKind.Empty,
                command=types.Command(
                    title="Explain selection",
                    command="orchestrator.explain",
                    arguments=[{"uri": uri, "range": selected}],
                ),
            )
        )
        for kind in ls.kinds if ls.ai_mode != "off" else []:
            args = {"uri": uri, "range": selected, "kinds": [kind]}
            out.append(
                types.CodeAction(
                    title=f"Analyze selection for {kind}",
                    kind=types.CodeActionKind.Empty,
                    command=types.Command(
                        title=f"Analyze for {kind}", command="orchestrator.analyze", arguments=[args]
                    ),
                )
            )
    func = enclosing_function(lines, sel.start.line) if _is_python(doc) else None
    if func is not None:
        start, end, name = func
        whole = types.Range(
            start=types.Position(line=start, character=0),
            end=types.Position(line=end, character=to_client(lines[end], len(lines[end]), ls.encoding)),
        )
        out.append(
            types.CodeAction(
                title=f"Generate tests for {name}",
                kind=types.CodeActionKind.Empty,
                data={"action": "tests", "uri": uri, "version": version, "range": range_json(whole), "name": name},
            )
        )
    return out


async def compute_edit(ls: OrchestratorServer, data: dict[str, Any]) -> types.WorkspaceEdit:
    """The edit of a lazy action: the finding's own fix, or a model's rewrite."""
    from orchestrator.types import Finding, Range

    doc = ls.document(data.get("uri", ""))
    if doc.version != data.get("version"):
        raise JsonRpcContentModified("the document changed since this action was offered; ask for actions again")
    ls.check(doc)
    lines = split_lines(doc.source)
    action = data["action"]
    if action in ("fix", "quickfix"):
        raw = data.get("finding")
        if not isinstance(raw, dict):
            raise JsonRpcInvalidParams("this action has no finding")
        try:
            finding = Finding.model_validate({**raw, "fix": None} if action == "fix" else raw)
        except ValueError as exc:
            raise JsonRpcInvalidParams(f"not a finding: {exc}") from None
        if action == "quickfix":
            if finding.fix is None:
                raise JsonRpcInvalidParams("this finding has no fix of its own")
            return _edit_of(ls, doc.uri, lines, [e.model_dump(mode="json") for e in finding.fix.edits])
    else:
        selection = Range.of(*range_from_client(lines, json_range(data.get("range")), ls.encoding))
    orch = await ls.orchestrator()
    core_doc = ls.core_document(doc)
    titles = {"fix": "Fixing with AI", "refactor": "Refactoring with AI", "tests": "Writing tests"}
    async with ls.progress(f"{titles[action]}: {Path(core_doc.path).name}", cancellable=True):
        if action == "fix":
            result = await orch.fix(core_doc, finding, profile=ls.profile, front_end="lsp")
        elif action == "refactor":
            result = await orch.refactor(core_doc, selection, profile=ls.profile, front_end="lsp")
        else:
            tests = await orch.generate_tests(core_doc, selection, profile=ls.profile, front_end="lsp")
            ls.status.changed()
            return tests_edit(ls, doc, tests.text)
    ls.status.changed()
    return _edit_of(ls, doc.uri, lines, [e.model_dump(mode="json") for e in result.edits])


def tests_edit(ls: OrchestratorServer, doc: TextDocument, code: str) -> types.WorkspaceEdit:
    """Tests go to tests/test_<module>.py under the workspace root (next to the module
    without one): appended when it exists, created when the client can create files,
    else appended to the module itself."""
    source = Path(to_fs_path(doc.uri) or doc.uri)
    root = ls.root_path()
    name = f"test_{source.stem}{source.suffix}"
    target = Path(root) / "tests" / name if root else source.with_name(name)
    target_uri = from_fs_path(str(target)) or str(target)
    code = code.rstrip("\n") + "\n"
    existing: str | None = None
    opened = ls.opened(target_uri)
    if opened is not None:
        existing = opened.source
    elif target.is_file():
        existing = target.read_text(encoding="utf-8", errors="replace")
    if existing is not None:
        return types.WorkspaceEdit(changes={target_uri: [_append(ls, existing, code)]})
    changes_ok = ls.supports("workspace.workspace_edit.document_changes", False)
    creates = "create" in (ls.supports("workspace.workspace_edit.resource_operations") or [])
    if changes_ok or creates:
        start = types.Range(start=types.Position(line=0, character=0), end=types.Position(line=0, character=0))
        return types.WorkspaceEdit(
            document_changes=[
                types.CreateFile(uri=target_uri, options=types.CreateFileOptions(ignore_if_exists=True)),
                types.TextDocumentEdit(
                    text_document=types.OptionalVersionedTextDocumentIdentifier(uri=target_uri, version=None),
                    edits=[types.TextEdit(range=start, new_text=code)],
                ),
            ]
        )
    return types.WorkspaceEdit(
        changes={doc.uri: [_append(ls, doc.source, f"\n# Tests generated by Orchestrator\n{code}")]}
    )


def _append(ls: OrchestratorServer, text: str, code: str) -> types.TextEdit:
    lines = split_lines(text)
    end = types.Position(line=len(lines) - 1, character=to_client(lines[-1], len(lines[-1]), ls.encoding))
    glue = "" if not text or text.endswith("\n\n") else "\n" if text.endswith("\n") else "\n\n"
    return types.TextEdit(range=types.Range(start=end, end=end), new_text=glue + code)


def enclosing_function(lines: list[str], line: int, *, reach: int = 2000) -> tuple[int, int, str] | None:
    """(first line, last line, name) of the innermost Python function around `line`."""
    if not 0 <= line < len(lines):
        return None
    for i in range(line, max(-1, line - reach), -1):
        match = _DEF.match(lines[i])
        if match is None:
            continue
        indent = len(match.group(1).expandtabs())
        end = i
        for j in range(i + 1, min(len(lines), i + 5 * reach)):
            text = lines[j]
            if not text.strip():
                continue
            if len(text) - len(text.lstrip()) <= indent:
                break
            end = j
        if end >= line:
            return i, end, match.group(2)
    return None


def _edit_of(ls: OrchestratorServer, uri: str, lines: list[str], edits: list[dict[str, Any]]) -> types.WorkspaceEdit:
    from orchestrator.types import TextEdit

    out = []
    for raw in edits:
        edit = TextEdit.model_validate(raw)
        out.append(types.TextEdit(range=range_to_client(lines, edit.range, ls.encoding), new_text=edit.new_text))
    return types.WorkspaceEdit(changes={uri: out})


def _key(diag: types.Diagnostic) -> tuple[Any, ...]:
    r = diag.range
    return (r.start.line, r.start.character, r.end.line, r.end.character, diag.code, diag.source, diag.message)


def _filter(actions: list[types.CodeAction], only: Any) -> list[types.CodeAction]:
    if not only:
        return actions
    prefixes = [value_of(o) for o in only]
    kinds = [(a, value_of(a.kind or "")) for a in actions]
    return [a for a, k in kinds if any(k == p or k.startswith(p + ".") for p in prefixes)]


def _as_command(action: types.CodeAction) -> types.Command:
    if action.command is not None:
        return types.Command(title=action.title, command=action.command.command, arguments=action.command.arguments)
    return types.Command(title=action.title, command=APPLY, arguments=[action.data])


def _is_python(doc: TextDocument) -> bool:
    return doc.language_id == "python" or doc.uri.endswith((".py", ".pyi"))


def _short(text: str, size: int = 60) -> str:
    text = text.splitlines()[0] if text else ""
    return text if len(text) <= size else text[: size - 1] + "…"
