"""The code tools: each turns its arguments into one facade call and the result into a flat model.

Docstrings are the tool descriptions and the `Field` descriptions the argument docs that
agents read on every turn: keep both terse.
"""

from __future__ import annotations

import time
from contextlib import aclosing
from typing import Annotated

from mcp.server.mcpserver import Context
from mcp.server.mcpserver.resolve import Resolve
from mcp_types import CallToolResult, ListRootsResult
from pydantic import Field

from orchestrator import prompts
from orchestrator.context import build_context
from orchestrator.results import TextResult
from orchestrator.types import AnalysisKind, Finding, Message, Range, Severity

from . import args, diff
from . import models as out
from .args import CodeArg, KindName, KindsArg, LanguageArg, LinesArg, PathArg, ProfileArg
from .errors import tool_errors
from .state import app, roots, roots_if_files, roots_if_path

RootsIfPath = Annotated[ListRootsResult | None, Resolve(roots_if_path)]
RootsIfFiles = Annotated[ListRootsResult | None, Resolve(roots_if_files)]
ModelArg = Annotated[str | None, Field(description="id from list_models")]
EXTRA_FILE_TOKENS = 8_000  # context per file beyond the first in `ask`
PROGRESS_EVERY = 0.1  # seconds between progress notifications while an answer streams


async def analyze_code(
    ctx: Context,
    path: PathArg = None,
    code: CodeArg = None,
    language: LanguageArg = None,
    lines: LinesArg = None,
    kinds: KindsArg = None,
    profile: ProfileArg = None,
    consensus: Annotated[bool, Field(description="several models; keep agreed findings")] = False,
    listed: RootsIfPath = None,
) -> Annotated[CallToolResult, out.AnalysisOut]:
    """Find problems in a file or snippet: built-in analyzers plus AI."""
    with tool_errors():
        doc, name = args.document(roots(ctx, listed), path, code, language)
        result = await app(ctx).orch.analyze(doc, args.selection(doc, lines), kinds, profile, consensus=consensus)
    return out.result(
        out.AnalysisOut(
            findings=[out.finding(f, doc, display=name) for f in result.findings],
            models=result.models,
            reason=result.reason,
            notes=result.notes,
            **out.spend(result.usage),
        )
    )


async def ask(
    ctx: Context,
    question: str,
    files: Annotated[list[str] | None, Field(description="context: path or path:A-B")] = None,
    profile: ProfileArg = None,
    model: ModelArg = None,
    listed: RootsIfFiles = None,
) -> Annotated[CallToolResult, out.AnswerOut]:
    """Ask a model about code; the answer streams as progress."""
    state = app(ctx)
    with tool_errors():
        where = roots(ctx, listed)
        refs = [args.file_ref(where, ref) for ref in files or []]
        content = question
        for doc, _name, sel in refs[1:]:
            extra = build_context(doc, sel, counter=state.orch.counter, max_tokens=EXTRA_FILE_TOKENS)
            content = prompts.with_context(content, doc, extra)
        first = refs[0] if refs else None
        stream = await state.orch.chat(
            [Message(role="user", content=content)],
            document=first[0] if first else None,
            selection=first[2] if first else None,
            profile=profile,
            model=model,
        )
        sent = 0
        last = time.monotonic()
        async with aclosing(stream):  # a cancelled call stops the provider's stream too
            async for _chunk in stream:
                now = time.monotonic()
                if now - last >= PROGRESS_EVERY:
                    text = "".join(stream.state.parts)
                    await ctx.report_progress(len(text), None, text[sent:])
                    sent, last = len(text), now
        answer = "".join(stream.state.parts)
        if len(answer) > sent:
            await ctx.report_progress(len(answer), None, answer[sent:])
    st = stream.state
    usage = st.usage
    return out.result(
        out.AnswerOut(
            answer=answer,
            model=st.model or "",
            reason=st.reason,
            cached=st.cached,
            **(out.spend(usage) if usage else {}),
        )
    )


async def consensus(
    ctx: Context,
    question: str,
    models: Annotated[int | None, Field(ge=2, le=8, description="how many models")] = None,
    profile: ProfileArg = None,
) -> Annotated[CallToolResult, out.ConsensusOut]:
    """Ask several models; their answers and a synthesis."""
    with tool_errors():
        result = await app(ctx).orch.consensus_chat(
            [Message(role="user", content=question)], profile=profile, models=models
        )
    return out.result(
        out.ConsensusOut(
            answers={m: r.text for m, r in result.answers.items()},
            synthesis=result.synthesis.text,
            agreement=result.agreement,
            **out.spend(result.usage),
        )
    )


async def explain(
    ctx: Context,
    path: PathArg = None,
    code: CodeArg = None,
    language: LanguageArg = None,
    lines: LinesArg = None,
    profile: ProfileArg = None,
    listed: RootsIfPath = None,
) -> Annotated[CallToolResult, out.AnswerOut]:
    """Explain code."""
    with tool_errors():
        doc, _name = args.document(roots(ctx, listed), path, code, language)
        result = await app(ctx).orch.explain(doc, args.selection(doc, lines), profile=profile)
    return _answer(result)


async def fix(
    ctx: Context,
    problem: Annotated[str, Field(description="what to fix")],
    lines: Annotated[str, Field(description="A-B, 1-based")],
    path: PathArg = None,
    code: CodeArg = None,
    language: LanguageArg = None,
    kind: KindName = "refactoring",
    profile: ProfileArg = None,
    listed: RootsIfPath = None,
) -> Annotated[CallToolResult, out.FixOut]:
    """Fix lines of code; returns a unified diff, writes nothing."""
    with tool_errors():
        doc, name = args.document(roots(ctx, listed), path, code, language)
        region = args.selection(doc, lines) or Range.lines(0)
        finding = Finding(
            kind=AnalysisKind(kind),
            severity=Severity.WARNING,
            range=region,
            message=problem,
            rule="agent",
            source="mcp",
            path=doc.path,
        )
        result = await app(ctx).orch.fix(doc, finding, profile=profile)
    return out.result(
        out.FixOut(
            diff=diff.edits_diff(name, doc.text, result.edits),
            explanation=result.explanation,
            model=result.model,
            **out.spend(result.usage),
        )
    )


async def generate_tests(
    ctx: Context,
    path: PathArg = None,
    code: CodeArg = None,
    language: LanguageArg = None,
    lines: LinesArg = None,
    profile: ProfileArg = None,
    listed: RootsIfPath = None,
) -> Annotated[CallToolResult, out.AnswerOut]:
    """Write unit tests for code; returns the test file's text."""
    with tool_errors():
        doc, _name = args.document(roots(ctx, listed), path, code, language)
        result = await app(ctx).orch.generate_tests(doc, args.selection(doc, lines), profile=profile)
    return _answer(result)


def _answer(result: TextResult) -> CallToolResult:
    return out.result(
        out.AnswerOut(
            answer=result.text,
            model=result.model,
            reason=result.reason,
            cached=result.cached,
            **out.spend(result.usage),
        )
    )


TOOLS = (analyze_code, ask, consensus, explain, fix, generate_tests)
