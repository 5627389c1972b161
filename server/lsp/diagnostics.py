"""Diagnostics from two producers: the built-in analyzers on open and on change (debounced,
the next edit cancels the run), and AI analysis on save or on request.

Results are kept per (producer, uri), as esbonio does, so an AI run never wipes built-in
results and the reverse. They are pushed (`textDocument/publishDiagnostics`) or, for clients
that pull and can be told to pull again, served by `textDocument/diagnostic` followed by a
`workspace/diagnostic/refresh` when something changes.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from lsprotocol import types
from pygls.exceptions import JsonRpcException

from .positions import range_from_client, range_to_client, split_lines
from .protocol import Unfit, rpc

if TYPE_CHECKING:
    from orchestrator.results import AnalysisResult
    from orchestrator.types import Finding

    from .server import OrchestratorServer

log = logging.getLogger(__name__)
BUILTIN, AI = "builtin", "ai"
_SEVERITY = {
    "error": types.DiagnosticSeverity.Error,
    "warning": types.DiagnosticSeverity.Warning,
    "info": types.DiagnosticSeverity.Information,
    "hint": types.DiagnosticSeverity.Hint,
}


@dataclass
class Result:
    version: int | None
    findings: list[Finding] = field(default_factory=list)
    diagnostics: list[types.Diagnostic] = field(default_factory=list)


class Diagnostics:
    def __init__(self, ls: OrchestratorServer):
        self.ls = ls
        self.results: dict[tuple[str, str], Result] = {}
        self.tasks: dict[tuple[str, str], asyncio.Task[Any]] = {}
        self.generation = 0
        self._told: set[str] = set()  # URIs whose "not analyzed" message was shown

    # -- built-in ------------------------------------------------------------------------

    def schedule_builtin(self, uri: str, delay: float = 0.0) -> asyncio.Task[Any]:
        self._cancel(BUILTIN, uri)
        task = self.ls.spawn(self._builtin(uri, delay))
        self.tasks[BUILTIN, uri] = task
        return task

    def rerun_all(self) -> None:
        for doc in list(self.ls.workspace.text_documents.values()):
            self.schedule_builtin(doc.uri)

    async def _builtin(self, uri: str, delay: float) -> None:
        if delay > 0:
            await asyncio.sleep(delay)  # the debounce: the next edit cancels this task here
        doc = self.ls.opened(uri)
        if doc is None:
            return
        version = doc.version
        try:
            self.ls.check(doc)
        except Unfit as exc:
            self._store(BUILTIN, uri, Result(version))
            if uri not in self._told:
                self._told.add(uri)
                self.ls.show(str(exc), types.MessageType.Warning)
            return
        orch = await self.ls.orchestrator()
        report = await orch.builtin.analyze([self.ls.core_document(doc)], self.ls.kinds)
        for note in report.notes:
            self.ls.window_log_message(types.LogMessageParams(type=types.MessageType.Info, message=note))
        self._store(BUILTIN, uri, self._result(uri, version, report.findings, BUILTIN))

    # -- AI ------------------------------------------------------------------------------

    def schedule_ai(self, uri: str) -> None:
        self._cancel(AI, uri)
        self.tasks[AI, uri] = self.ls.spawn(self._ai_quietly(uri))

    async def _ai_quietly(self, uri: str) -> None:
        from orchestrator.errors import OrchestratorError

        try:
            await self.run_ai(uri)
        except Unfit:
            return  # said once already, by the built-in run
        except (OrchestratorError, JsonRpcException) as exc:
            self.ls.show(f"AI analysis of {_name(uri)} failed: {exc}", types.MessageType.Warning)

    async def run_ai(
        self,
        uri: str,
        selection: types.Range | None = None,
        kinds: Sequence[str] | None = None,
        profile: str | None = None,
    ) -> dict[str, Any]:
        """AI analysis of a document (or of a selection, for some kinds); its findings replace
        the earlier AI findings they cover. Returns a summary for the command's answer."""
        from orchestrator.types import Range

        doc = self.ls.document(uri)
        self.ls.check(doc)
        version = doc.version
        lines = split_lines(doc.source)
        core_doc = self.ls.core_document(doc)
        wanted = list(kinds or self.ls.kinds)
        sel = Range.of(*range_from_client(lines, selection, self.ls.encoding)) if selection else None
        orch = await self.ls.orchestrator()
        async with self.ls.progress(f"AI analysis of {_name(uri)}", cancellable=True):
            known = self.results.get((BUILTIN, uri))
            result: AnalysisResult = await orch.analyze(
                core_doc,
                sel,
                wanted,
                profile or self.ls.profile,
                ai=True,
                # This text's built-in findings are already here: the core need not rerun them.
                builtin_findings=known.findings if known is not None and known.version == version else None,
                front_end="lsp",
            )
        self.ls.status.changed()
        found = [f for f in result.findings if f.source.startswith("ai/")]
        if doc.version != version:  # edited while the model thought: keep what still stands
            found = follow(found, lines, split_lines(doc.source))
            version = doc.version
        kept: list[Finding] = []
        previous = self.results.get((AI, uri))
        if previous is not None and (sel is not None or kinds):
            kept = [f for f in previous.findings if not _covered(f, sel, wanted)]
        self._store(AI, uri, self._result(uri, version, kept + found, AI))
        for note in result.notes:
            if note.startswith("AI analysis"):
                self.ls.show(note, types.MessageType.Warning)
        return self._summary(result, found)

    @staticmethod
    def _summary(result: AnalysisResult, found: list[Finding]) -> dict[str, Any]:
        return {
            "findings": len(found),
            "builtinFindings": len([f for f in result.findings if not f.source.startswith("ai/")]),
            "models": result.models,
            "costUsd": result.usage.cost_usd,
            "reason": result.reason,
            "notes": result.notes,
        }

    # -- the store -----------------------------------------------------------------------

    def _result(self, uri: str, version: int | None, findings: Iterable[Finding], producer: str) -> Result:
        doc = self.ls.opened(uri)
        lines = split_lines(doc.source) if doc is not None else [""]
        described = bool(self.ls.supports("text_document.publish_diagnostics.code_description_support", False))
        result = Result(version)
        for finding in findings:
            result.findings.append(finding)
            result.diagnostics.append(to_diagnostic(finding, producer, version, lines, self.ls.encoding, described))
        return result

    def _store(self, producer: str, uri: str, result: Result) -> None:
        self.results[producer, uri] = result
        self.generation += 1
        if self.ls.pull_diagnostics:
            self.ls.spawn(self._refresh())
        else:
            self.publish(uri)

    async def _refresh(self) -> None:
        try:
            await self.ls.workspace_diagnostic_refresh_async(None)
        except JsonRpcException as exc:
            log.info("diagnostic refresh refused: %s", exc)

    def combined(self, uri: str) -> list[types.Diagnostic]:
        return [d for producer in (BUILTIN, AI) for d in self.results.get((producer, uri), Result(None)).diagnostics]

    def publish(self, uri: str) -> None:
        doc = self.ls.opened(uri)
        self.ls.text_document_publish_diagnostics(
            types.PublishDiagnosticsParams(
                uri=uri, diagnostics=self.combined(uri), version=doc.version if doc is not None else None
            )
        )

    def findings(self, uri: str) -> list[tuple[str, Finding, types.Diagnostic]]:
        out = []
        for producer in (BUILTIN, AI):
            result = self.results.get((producer, uri))
            if result is not None:
                out += [(producer, f, d) for f, d in zip(result.findings, result.diagnostics, strict=True)]
        return out

    def close(self, uri: str) -> None:
        for producer in (BUILTIN, AI):
            self._cancel(producer, uri)
            self.results.pop((producer, uri), None)
        self._told.discard(uri)
        if not self.ls.pull_diagnostics:
            self.ls.text_document_publish_diagnostics(types.PublishDiagnosticsParams(uri=uri, diagnostics=[]))

    def _cancel(self, producer: str, uri: str) -> None:
        task = self.tasks.pop((producer, uri), None)
        if task is not None and not task.done():
            task.cancel()

    async def pull(self, uri: str, previous: str | None) -> types.DocumentDiagnosticReport:
        doc = self.ls.document(uri)
        builtin = self.results.get((BUILTIN, uri))
        if builtin is None or builtin.version != doc.version:
            task = self.tasks.get((BUILTIN, uri))
            if task is None or task.done():
                task = self.schedule_builtin(uri)
            try:
                await asyncio.shield(task)
            except asyncio.CancelledError:
                current = asyncio.current_task()
                if current is not None and current.cancelling():
                    raise
                # The next edit cancelled the run: the client should ask again (LSP ServerCancelled).
                raise JsonRpcException("the document changed", code=-32802, data={"retriggerRequest": True}) from None
        result_id = f"{doc.version}:{self.generation}"
        if previous == result_id:
            return types.RelatedUnchangedDocumentDiagnosticReport(result_id=result_id)
        return types.RelatedFullDocumentDiagnosticReport(items=self.combined(uri), result_id=result_id)


def to_diagnostic(
    finding: Finding, producer: str, version: int | None, lines: list[str], encoding: str, described: bool
) -> types.Diagnostic:
    message = finding.message
    if producer == AI:
        message += f" ({finding.source.removeprefix('ai/')})"
    if finding.suggestion:
        message += f"\nSuggestion: {finding.suggestion}"
    return types.Diagnostic(
        range=range_to_client(lines, finding.range, encoding),
        message=message,
        severity=_SEVERITY.get(finding.severity.value, types.DiagnosticSeverity.Warning),
        source=f"orchestrator/{finding.kind.value}",
        code=finding.rule,
        code_description=types.CodeDescription(href=finding.url) if finding.url and described else None,
        data={"producer": producer, "version": version, "finding": finding.model_dump(mode="json")},
    )


def follow(findings: Iterable[Finding], old: list[str], new: list[str], reach: int = 500) -> list[Finding]:
    """Findings made on `old` text, moved to where their lines are in `new` (nearest first);
    a finding whose lines changed is dropped: its message may no longer be true."""
    from orchestrator.types import Fix, Position, Range, TextEdit

    def moved(rng: Range, delta: int) -> Range:
        return Range(
            start=Position(line=rng.start.line + delta, character=rng.start.character),
            end=Position(line=rng.end.line + delta, character=rng.end.character),
        )

    out = []
    for finding in findings:
        first, last = finding.range.start.line, finding.range.end.line
        block = old[first : last + 1]
        if not block or last >= len(old):
            continue
        for delta in sorted(range(-reach, reach + 1), key=abs):
            at = first + delta
            if 0 <= at and new[at : at + len(block)] == block:
                fix = finding.fix
                if fix is not None and delta:
                    edits = tuple(TextEdit(range=moved(e.range, delta), new_text=e.new_text) for e in fix.edits)
                    fix = Fix(description=fix.description, edits=edits)
                out.append(finding.model_copy(update={"range": moved(finding.range, delta), "fix": fix}))
                break
    return out


def _covered(finding: Finding, selection: Any, kinds: Sequence[str]) -> bool:
    if finding.kind.value not in kinds:
        return False
    if selection is None:
        return True
    return selection.start.line <= finding.range.start.line <= selection.end.line


def _name(uri: str) -> str:
    return uri.rsplit("/", 1)[-1] or uri


def register(ls: OrchestratorServer) -> None:
    diagnostics = ls.diagnostics = Diagnostics(ls)

    @ls.feature(types.TEXT_DOCUMENT_DID_OPEN)
    def did_open(params: types.DidOpenTextDocumentParams) -> None:
        diagnostics.schedule_builtin(params.text_document.uri)

    @ls.feature(types.TEXT_DOCUMENT_DID_CHANGE)
    def did_change(params: types.DidChangeTextDocumentParams) -> None:
        diagnostics.schedule_builtin(params.text_document.uri, ls.config.diagnostics_delay_ms / 1000)

    @ls.feature(types.TEXT_DOCUMENT_DID_SAVE, types.SaveOptions(include_text=False))
    def did_save(params: types.DidSaveTextDocumentParams) -> None:
        if ls.ai_mode == "save" and ls.opened(params.text_document.uri) is not None:
            diagnostics.schedule_ai(params.text_document.uri)

    @ls.feature(types.TEXT_DOCUMENT_DID_CLOSE)
    def did_close(params: types.DidCloseTextDocumentParams) -> None:
        diagnostics.close(params.text_document.uri)

    @ls.feature(
        types.TEXT_DOCUMENT_DIAGNOSTIC,
        types.DiagnosticOptions(identifier="orchestrator", inter_file_dependencies=False, workspace_diagnostics=False),
    )
    @rpc
    async def pull(params: types.DocumentDiagnosticParams) -> types.DocumentDiagnosticReport:
        return await diagnostics.pull(params.text_document.uri, params.previous_result_id)
