"""`review_diff`: analyze the files a diff touches and keep the findings on its added lines.

The diff comes inline or from `git diff` over a revision range in a repository inside the
roots. Each changed file is analyzed whole (a problem is easier to see with its
surroundings), from the range's end revision, else from disk; when the disk does not hold
what an inline diff adds, only the lines its hunks show are reviewed.
"""

from __future__ import annotations

import asyncio
import os
import re
from pathlib import Path
from typing import Annotated

from mcp.server.mcpserver import Context
from mcp.server.mcpserver.resolve import Resolve
from mcp_types import CallToolResult, ListRootsResult
from pydantic import Field

from orchestrator.context import language_of
from orchestrator.errors import InvalidInputError, OrchestratorError
from orchestrator.results import AnalysisResult, sum_usage
from orchestrator.types import Document

from . import diff as diffs
from . import models as out
from .args import KindsArg, ProfileArg
from .errors import tool_errors
from .paths import Roots
from .state import app, roots, roots_always

# A revision never starts with "-" (no option injection) and never holds "..".
_REV = r"[\w/~^@{}+](?:(?!\.\.)[\w./~^@{}+-])*"
_RANGE = re.compile(rf"^({_REV})(?:(\.\.\.?)({_REV})?)?$")
GIT_TIMEOUT = 60.0
CONCURRENCY = 4
MAX_FILES = 50  # each changed file is one analysis, with its model calls


async def review_diff(
    ctx: Context,
    diff: Annotated[str | None, Field(description="unified diff")] = None,
    revs: Annotated[str | None, Field(description="git range A..B, or A (vs work tree)")] = None,
    repo: Annotated[str | None, Field(description="default: first root")] = None,
    kinds: KindsArg = None,
    profile: ProfileArg = None,
    listed: Annotated[ListRootsResult | None, Resolve(roots_always)] = None,
) -> Annotated[CallToolResult, out.ReviewOut]:
    """Review only the lines a diff or git range adds."""
    orch = app(ctx).orch
    with tool_errors():
        where = roots(ctx, listed)
        base = where.resolve(repo) if repo else where.dirs[0]
        if not base.is_dir():
            raise InvalidInputError(f"repo {repo!r} is not a directory")
        if (diff is None) == (revs is None):
            raise InvalidInputError("pass `diff` (a unified diff) or `revs` (a git range), not both")
        new_rev = None
        if revs is not None:
            new_rev, text = await _git_diff(base, revs)
        else:
            text = diff or ""
        changes = [c for c in diffs.parse(text) if c.added and not c.deleted] if text.strip() else []
        notes: list[str] = []
        if len(changes) > MAX_FILES:
            notes.append(f"{len(changes)} files changed: reviewed the first {MAX_FILES}; pass a narrower range")
            changes = changes[:MAX_FILES]
        docs = [await _document(where, base, c, new_rev, notes) for c in changes]
        done = 0

        async def review(doc: Document, change: diffs.FileChange) -> AnalysisResult:
            nonlocal done
            result = await orch.analyze(doc, kinds=kinds, profile=profile)
            done += 1
            await ctx.report_progress(done, len(changes), f"reviewed {change.path}")
            return result

        results = await orch.batch(
            [lambda d=d, c=c: review(d, c) for d, c in zip(docs, changes, strict=True)], concurrency=CONCURRENCY
        )
        failed = [r for r in results if isinstance(r, BaseException)]
        if failed and len(failed) == len(results):
            raise failed[0]
    findings: list[out.FindingOut] = []
    used: list[AnalysisResult] = []
    for doc, change, result in zip(docs, changes, results, strict=True):
        if isinstance(result, BaseException):
            if not isinstance(result, OrchestratorError):
                raise result
            notes.append(f"{change.path}: {result}")
            continue
        used.append(result)
        notes += [n for n in result.notes if n not in notes]
        findings += [
            out.finding(f, doc, display=change.path, with_path=True)
            for f in result.findings
            if diffs.touches(change.added, f.range)
        ]
    return out.result(
        out.ReviewOut(
            files=[c.path for c in changes],
            findings=findings,
            models=list(dict.fromkeys(m for r in used for m in r.models)),
            reason="; ".join(r.reason for r in used if r.reason),
            notes=notes,
            **out.spend(sum_usage(r.usage for r in used)),
        )
    )


async def _document(where: Roots, base: Path, change: diffs.FileChange, rev: str | None, notes: list[str]) -> Document:
    real = where.resolve(change.path, base=base)  # a diff naming ../../x is refused like any path
    language = language_of(change.path)
    if rev is not None:
        text = await _git(base, "show", f"{rev}:./{change.path}")
        return Document(path=str(real), text=text, language=language)
    if real.is_file():
        _, text = where.read_text(change.path, base=base)
        lines = text.splitlines()
        if all(n <= len(lines) and lines[n - 1] == change.shown[n] for n in change.added):
            return Document(path=str(real), text=text, language=language, on_disk=True)
    notes.append(f"{change.path}: the file on disk differs from the diff; reviewed the lines its hunks show")
    return Document(path=str(real), text=diffs.sketch(change), language=language)


async def _git_diff(base: Path, revs: str) -> tuple[str | None, str]:
    """(the revision holding the new side, or None for the working tree; the diff)."""
    match = _RANGE.match(revs.strip())
    if not match:
        raise InvalidInputError(f"revs {revs!r}: expected A..B, A...B or A (git revisions)")
    _start, dots, end = match.groups()
    new_rev = (end or "HEAD") if dots else None
    text = await _git(base, "diff", "--no-color", "--no-ext-diff", "--no-textconv", "--relative", "-U0", revs, "--")
    return new_rev, text


async def _git(base: Path, *argv: str) -> str:
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "GIT_OPTIONAL_LOCKS": "0", "GIT_PAGER": "cat"}
    try:
        proc = await asyncio.create_subprocess_exec(
            "git",
            "-c",
            "core.quotepath=off",
            "-c",
            "core.fsmonitor=false",
            *argv,
            cwd=base,
            env=env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
    except FileNotFoundError:
        raise InvalidInputError("git is not installed on the server; pass the diff text as `diff`") from None
    try:
        stdout, stderr = await asyncio.wait_for(proc.communicate(), GIT_TIMEOUT)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise InvalidInputError(f"git {argv[0]} took over {GIT_TIMEOUT:.0f} s") from None
    if proc.returncode != 0:
        why = stderr.decode("utf-8", "replace").strip().splitlines()
        raise InvalidInputError(f"git {argv[0]} failed in {base}: {why[-1] if why else proc.returncode}")
    return stdout.decode("utf-8", "replace")


TOOLS = (review_diff,)
