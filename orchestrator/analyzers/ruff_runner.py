"""Ruff for style: one `ruff check` process for every file on disk, stdin for buffers.

Ruff has no Python API; what costs is the process, so files that are unchanged on disk go
to a single invocation, which also lets ruff find each project's own configuration.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path

from ..errors import InvalidInputError
from ..types import AnalysisKind, Document, Finding, Fix, Range, Severity, TextEdit

SOURCE = "orchestrator/ruff"
_ERROR_PREFIXES = ("E9", "F63", "F7", "F82")

log = logging.getLogger(__name__)


def ruff_binary() -> str:
    from ruff.__main__ import find_ruff_bin

    return os.fsdecode(find_ruff_bin())


async def scan(docs: Sequence[Document], extend_select: Sequence[str] = ()) -> list[Finding]:
    if not docs:
        return []
    base = [ruff_binary(), "check", "--output-format", "json", "--no-cache", "--exit-zero", "--quiet"]
    if extend_select:
        base += ["--extend-select", ",".join(extend_select)]
    on_disk = [d for d in docs if d.on_disk]
    buffers = [d for d in docs if not d.on_disk]
    jobs = []
    if on_disk:
        jobs.append(_run(base + ["--", *(d.path for d in on_disk)], None, on_disk))
    for doc in buffers:
        jobs.append(_run(base + ["--stdin-filename", doc.path, "-"], doc.text, [doc]))
    results = await asyncio.gather(*jobs)
    return [f for batch in results for f in batch]


async def _run(cmd: list[str], stdin: str | None, docs: Sequence[Document]) -> list[Finding]:
    proc = await asyncio.create_subprocess_exec(
        *cmd,
        stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await proc.communicate(stdin.encode("utf-8") if stdin is not None else None)
    except asyncio.CancelledError:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        raise
    if proc.returncode not in (0, 1):
        raise InvalidInputError(f"ruff failed (exit {proc.returncode}): {err.decode(errors='replace').strip()}")
    try:
        items = json.loads(out or b"[]")
    except json.JSONDecodeError as exc:
        raise InvalidInputError(f"ruff printed something that is not JSON: {exc}") from None
    by_path = {_norm(d.path): d for d in docs}
    findings = []
    for item in items:
        if not item.get("code"):
            continue  # syntax errors: the builtin analyzer reports its own, once
        doc = by_path.get(_norm(item.get("filename", ""))) or (docs[0] if len(docs) == 1 else None)
        if doc is None:
            log.debug("ruff reported a file we did not ask for: %s", item.get("filename"))
            continue
        findings.append(_finding(item, doc))
    return findings


def _norm(path: str) -> str:
    return os.path.normcase(str(Path(path).resolve())) if path else ""


def _range(start: dict, end: dict) -> Range:
    # Ruff locations are 1-based rows and 1-based character columns.
    return Range.of(start["row"] - 1, start["column"] - 1, end["row"] - 1, end["column"] - 1)


def _finding(item: dict, doc: Document) -> Finding:
    code = item["code"]
    fix = None
    raw_fix = item.get("fix") or {}
    if raw_fix.get("applicability") == "safe" and raw_fix.get("edits"):
        fix = Fix(
            description=raw_fix.get("message") or f"Fix {code}",
            edits=tuple(
                TextEdit(range=_range(e["location"], e["end_location"]), new_text=e["content"])
                for e in raw_fix["edits"]
            ),
        )
    return Finding(
        kind=AnalysisKind.STYLE,
        severity=Severity.ERROR if code.startswith(_ERROR_PREFIXES) else Severity.WARNING,
        range=_range(item["location"], item["end_location"]),
        message=item.get("message", code),
        rule=code,
        source=SOURCE,
        suggestion=(raw_fix.get("message") if raw_fix else None),
        fix=fix,
        path=doc.path,
        url=item.get("url"),
    )
