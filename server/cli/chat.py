"""`orchestrator chat "question"`: stream an answer to stdout; model, tokens, cost and route to stderr.

It goes through the facade like every front end: routed, retried, cached, in the ledger.

Exit status: 0 answered, 2 an error (nothing configured, provider failure, bad option),
130 interrupted.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import Any


def add_parser(sub: Any) -> None:
    p = sub.add_parser("chat", help="ask a model; the answer streams to stdout")
    p.add_argument("question", help="what to ask (use - to read it from stdin)")
    p.add_argument("--model", metavar="ID", help="a catalog id, e.g. anthropic/claude-sonnet-5-5 (default: routed)")
    p.add_argument("--profile", choices=("quality", "balanced", "speed", "budget", "long_context"), help="routing")
    p.add_argument("--file", metavar="F", help="a file to give as context")
    p.add_argument("--lines", metavar="A-B", help="the lines of --file to focus on, 1-based, e.g. 10-20")
    p.add_argument("--max-tokens", type=int, default=2048, help="longest answer (default 2048)")
    p.set_defaults(handler=run)


def parse_lines(spec: str) -> tuple[int, int]:
    from orchestrator.errors import InvalidInputError

    match = re.fullmatch(r"\s*(\d+)\s*(?:[-:]\s*(\d+)\s*)?", spec)
    if not match:
        raise InvalidInputError(f"--lines {spec!r}: expected A-B with 1-based line numbers, e.g. 10-20")
    start = int(match.group(1))
    end = int(match.group(2) or start)
    if start < 1 or end < start:
        raise InvalidInputError(f"--lines {spec!r}: lines start at 1 and A must not exceed B")
    return start, end


def run(args: argparse.Namespace) -> int:
    import asyncio

    return asyncio.run(_chat(args))


async def _chat(args: argparse.Namespace) -> int:
    import asyncio

    from orchestrator.core import Orchestrator
    from orchestrator.errors import InvalidInputError
    from orchestrator.settings import load_settings
    from orchestrator.types import Message

    settings = load_settings()
    question = sys.stdin.read() if args.question == "-" else args.question
    if not question.strip():
        raise InvalidInputError("the question is empty")
    document, selection = (None, None)
    if args.file:
        document, selection = await asyncio.to_thread(_read_file, args.file, args.lines)
    async with await Orchestrator.create(settings, front_end="cli") as orch:
        stream = await orch.chat(
            [Message(role="user", content=question)],
            document=document,
            selection=selection,
            model=args.model,
            profile=args.profile,
            max_tokens=args.max_tokens,
        )
        wrote_any = False
        async for chunk in stream:
            if chunk.text:
                sys.stdout.write(chunk.text)
                sys.stdout.flush()
                wrote_any = True
        if wrote_any:
            sys.stdout.write("\n")
            sys.stdout.flush()
        state = stream.state
        if state.usage is not None:
            u = state.usage
            approx = " (estimated)" if u.estimated else ""
            cached = " (cached)" if state.cached else ""
            print(
                f"model: {state.model} · tokens: {u.input_tokens} in / {u.output_tokens} out{approx}"
                f" · cost: ${u.cost_usd:.6f}{cached}",
                file=sys.stderr,
            )
        print(f"route: {state.reason}", file=sys.stderr)
    return 0


def _read_file(path: str, lines: str | None) -> tuple[Any, Any]:
    from orchestrator.context import language_of
    from orchestrator.errors import InvalidInputError
    from orchestrator.types import Document, Range

    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InvalidInputError(f"--file {path}: no such file") from None
    except UnicodeDecodeError:
        raise InvalidInputError(f"--file {path}: not UTF-8 text") from None
    except OSError as exc:
        raise InvalidInputError(f"--file {path}: {exc.strerror}") from None
    selection = None
    if lines:
        start, end = parse_lines(lines)
        selection = Range.lines(start - 1, end)
    return Document(path=str(file), text=text, language=language_of(str(file))), selection
