"""The embedded default: analysis with no key and no network.

security: bandit (in-process) and a secrets scan of any text file; style: ruff (one
process per batch); performance, refactoring, testing: our own AST checks. The kinds run
concurrently: ruff in its own process, the Python checks in a worker thread, so the
event loop of a language server stays free while they work.
"""

from __future__ import annotations

import ast
import asyncio
import logging
from collections.abc import Collection, Sequence
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from ..analyzers.bandit_worker import BanditWorker
from ..settings import AnalysisSettings
from ..types import AnalysisKind, Document, Finding, Range, Severity

log = logging.getLogger(__name__)

SEVERITY_ORDER = {Severity.ERROR: 0, Severity.WARNING: 1, Severity.INFO: 2, Severity.HINT: 3}


class AnalysisReport(BaseModel):
    model_config = ConfigDict(frozen=True)

    findings: list[Finding] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)  # files skipped and why


def is_python(doc: Document) -> bool:
    return doc.language == "python" or doc.path.endswith((".py", ".pyi"))


class BuiltinAnalyzer:
    """Runs the offline analyzers over a batch of documents."""

    def __init__(self, settings: AnalysisSettings | None = None, *, bandit_worker: BanditWorker | None = None):
        self.settings = settings or AnalysisSettings()
        # A worker process for bandit when the caller started one (the CLI does); else a thread.
        self.bandit_worker = bandit_worker

    async def analyze(self, docs: Sequence[Document], kinds: Collection[AnalysisKind]) -> AnalysisReport:
        kinds = set(kinds)
        python_docs = [d for d in docs if is_python(d)]
        parsed, notes, syntax_findings = _parse_all(python_docs, kinds)
        clean_python = [d for d in python_docs if d.path in parsed]

        jobs: list[asyncio.Future[list[Finding]] | asyncio.Task[list[Finding]]] = []
        if AnalysisKind.STYLE in kinds and clean_python:
            from ..analyzers import ruff_runner

            jobs.append(asyncio.ensure_future(ruff_runner.scan(clean_python, self.settings.ruff_extend_select)))
        if AnalysisKind.SECURITY in kinds and self.bandit_worker is not None and clean_python:
            jobs.append(asyncio.ensure_future(self._bandit_in_worker(clean_python)))
        jobs.append(asyncio.ensure_future(asyncio.to_thread(self._python_checks, docs, parsed, kinds)))
        results = await asyncio.gather(*jobs)

        findings = syntax_findings + [f for batch in results for f in batch]
        findings.sort(key=lambda f: (f.path, f.range.start.line, f.range.start.character, f.kind, f.rule))
        return AnalysisReport(findings=_dedupe(findings), notes=notes)

    async def _bandit_in_worker(self, docs: Sequence[Document]) -> list[Finding]:
        from ..analyzers import bandit_runner

        worker = self.bandit_worker
        assert worker is not None
        if not worker.submitted:
            worker.submit((d.path, d.text) for d in docs)
        # The caller may have submitted more files than survived exclusion or parsing.
        wanted = {d.path for d in docs}
        return bandit_runner.to_findings(item for item in await worker.result() if item["path"] in wanted)

    def _python_checks(
        self, docs: Sequence[Document], parsed: dict[str, ast.Module], kinds: set[AnalysisKind]
    ) -> list[Finding]:
        from ..analyzers import performance, refactoring, testing

        cfg = self.settings
        out: list[Finding] = []
        test_paths = {d.path for d in docs if d.path in parsed and testing.is_test_file(d.path)}
        if AnalysisKind.SECURITY in kinds:
            from ..analyzers import bandit_runner, secrets

            for doc in docs:
                out.extend(secrets.scan(doc))
            python = [d for d in docs if d.path in parsed]
            if python and self.bandit_worker is None:
                out.extend(bandit_runner.scan(python, test_paths))
        for doc in docs:
            tree = parsed.get(doc.path)
            if tree is None:
                continue
            if AnalysisKind.PERFORMANCE in kinds:
                out.extend(performance.check(doc, tree))
            if AnalysisKind.REFACTORING in kinds:
                out.extend(
                    refactoring.check(
                        doc,
                        tree,
                        max_complexity=cfg.max_complexity,
                        max_function_lines=cfg.max_function_lines,
                        max_nesting=cfg.max_nesting,
                        max_params=cfg.max_params,
                    )
                )
            if AnalysisKind.TESTING in kinds and doc.path in test_paths:
                out.extend(testing.check_tests(doc, tree))
        if AnalysisKind.TESTING in kinds:
            sources = [(d, parsed[d.path]) for d in docs if d.path in parsed and d.path not in test_paths]
            if sources:
                out.extend(testing.untested(sources, _load_tests(docs, parsed, test_paths)))
        return out


def _parse_all(
    docs: Sequence[Document], kinds: set[AnalysisKind]
) -> tuple[dict[str, ast.Module], list[str], list[Finding]]:
    parsed: dict[str, ast.Module] = {}
    notes: list[str] = []
    findings: list[Finding] = []
    for doc in docs:
        try:
            parsed[doc.path] = ast.parse(doc.text, filename=doc.path)
        except SyntaxError as exc:
            line = max(0, (exc.lineno or 1) - 1)
            col = max(0, (exc.offset or 1) - 1)
            kind = AnalysisKind.STYLE if AnalysisKind.STYLE in kinds else min(kinds)
            findings.append(
                Finding(
                    kind=kind,
                    severity=Severity.ERROR,
                    range=Range.of(line, col, line, col + 1),
                    message=f"syntax error: {exc.msg}; the Python checks skipped this file",
                    rule="syntax-error",
                    source="orchestrator/parser",
                    suggestion="Fix the syntax error, then analyze again.",
                    path=doc.path,
                )
            )
        except ValueError as exc:  # e.g. NUL bytes in the source
            notes.append(f"{doc.path}: skipped, cannot parse as Python ({exc})")
    return parsed, notes, findings


def _load_tests(
    docs: Sequence[Document], parsed: dict[str, ast.Module], in_batch: set[str]
) -> list[tuple[Document, ast.Module]]:
    """The project's test files: those in the batch plus those found on disk."""
    from ..analyzers import testing

    tests = [(d, parsed[d.path]) for d in docs if d.path in in_batch]
    seen = {str(Path(p).resolve()) for p in in_batch}
    on_disk = [d.path for d in docs if d.on_disk or Path(d.path).is_file()]
    for path in testing.find_test_files(on_disk):
        if str(Path(path).resolve()) in seen:
            continue
        try:
            text = Path(path).read_text(encoding="utf-8")
            tests.append((Document(path=path, text=text, language="python", on_disk=True), ast.parse(text)))
        except (OSError, UnicodeDecodeError, SyntaxError, ValueError) as exc:
            log.debug("test file %s not readable: %s", path, exc)
    return tests


def _dedupe(findings: list[Finding]) -> list[Finding]:
    """Drop the same defect found twice: bandit and the secrets scan both catch hard-coded
    passwords (keep the first per line), ruff and our performance checks both catch sorted()[0]."""
    seen: set[tuple[str, int, str]] = set()
    ours = {(f.path, f.range.start.line, f.range.start.character) for f in findings if f.rule == "ORC-P106"}
    out = []
    for f in findings:
        # ruff's FURB192 is our ORC-P106 without the fix: keep ours.
        if f.rule == "FURB192" and (f.path, f.range.start.line, f.range.start.character) in ours:
            continue
        if f.rule in ("B105", "B106", "B107", "ORC-S003"):
            key = (f.path, f.range.start.line, "credential")
            if key in seen:
                continue
            seen.add(key)
        out.append(f)
    return out
