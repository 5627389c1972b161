"""`orchestrator chat "question"`: stream an answer to stdout; model, tokens and cost to stderr.

Exit status: 0 answered, 2 an error (nothing configured, provider failure, bad option),
130 interrupted.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import Any

SYSTEM = (
    "You are a senior software engineer helping a developer in their editor. Answer precisely and "
    "briefly; when you show code, show only what changes. The code context has 1-based line numbers; "
    "lines marked '>' are the ones the developer selected."
)


def add_parser(sub: Any) -> None:
    p = sub.add_parser("chat", help="ask a model; the answer streams to stdout")
    p.add_argument("question", help="what to ask (use - to read it from stdin)")
    p.add_argument(
        "--model", metavar="PROVIDER/MODEL", help="e.g. anthropic/claude-sonnet-5-5 (default: first configured)"
    )
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


def pick_model(model: str | None, settings: Any, catalog: Any) -> tuple[str, str]:
    """(provider, wire model). Routing by task and profile comes with the facade; this is
    the plain rule: the model asked for, else the first configured provider's default."""
    from orchestrator.errors import ProviderNotConfigured, UnknownModelError
    from orchestrator.providers.registry import how_to_configure
    from orchestrator.settings import PROVIDER_ALIASES, PROVIDERS

    if model:
        if model in catalog:
            info = catalog.get(model)
            return info.provider, info.model
        provider, _, wire = model.partition("/")
        provider = PROVIDER_ALIASES.get(provider, provider)
        if provider in PROVIDERS and wire:
            return provider, wire  # not in the catalog: allowed, priced at 0
        raise UnknownModelError(model, catalog.ids())
    configured = settings.configured_providers()
    ordered = [p for p in settings.routing.priority if p in configured] + [
        p for p in configured if p not in settings.routing.priority
    ]
    if not ordered:
        raise ProviderNotConfigured(f"no AI provider is configured: {how_to_configure()}")
    provider = ordered[0]
    default = settings.providers[provider].default_model
    if default:
        return provider, default
    candidates = [m for m in catalog.by_provider(provider) if m.supports("chat")]
    if not candidates:
        raise ProviderNotConfigured(
            f"provider {provider!r} has no chat model in the catalog: set {provider.upper()}_DEFAULT_MODEL"
        )
    # Balanced: the best model that is not priced as a flagship.
    affordable = [m for m in candidates if m.output_per_mtok <= 15] or candidates
    best = max(affordable, key=lambda m: (m.quality, -m.output_per_mtok))
    return provider, best.model


async def _chat(args: argparse.Namespace) -> int:
    import asyncio

    from orchestrator.catalog import Catalog
    from orchestrator.errors import InvalidInputError
    from orchestrator.providers.registry import Providers
    from orchestrator.settings import load_settings
    from orchestrator.tokens import TokenCounter
    from orchestrator.types import Message, Request

    settings = load_settings()
    catalog = Catalog.load(settings.models, source=settings.source_of("models"))
    question = sys.stdin.read() if args.question == "-" else args.question
    if not question.strip():
        raise InvalidInputError("the question is empty")
    provider_name, model = pick_model(args.model, settings, catalog)
    counter = TokenCounter()
    content = question
    if args.file:
        content = await asyncio.to_thread(
            _with_context, question, args.file, args.lines, counter, catalog, provider_name, model
        )
    providers = Providers(settings, catalog=catalog, counter=counter)
    request = Request(
        model=model, system=SYSTEM, messages=(Message(role="user", content=content),), max_tokens=args.max_tokens
    )
    try:
        provider = providers.get(provider_name)
        final = None
        wrote_any = False
        async for chunk in provider.stream(request):
            if chunk.text:
                sys.stdout.write(chunk.text)
                sys.stdout.flush()
                wrote_any = True
            if chunk.usage is not None:
                final = chunk
        if wrote_any:
            sys.stdout.write("\n")
            sys.stdout.flush()
        if final is not None and final.usage is not None:
            u = final.usage
            approx = " (estimated)" if u.estimated else ""
            print(
                f"model: {provider_name}/{model} · tokens: {u.input_tokens} in / {u.output_tokens} out{approx}"
                f" · cost: ${u.cost_usd:.6f}",
                file=sys.stderr,
            )
        return 0
    finally:
        await providers.close()


def _with_context(
    question: str, path: str, lines: str | None, counter: Any, catalog: Any, provider: str, model: str
) -> str:
    from orchestrator.context import build_context, language_of
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
    info = catalog.find(provider, model)
    window = info.context_window if info else 32_768
    doc = Document(path=str(file), text=text, language=language_of(str(file)))
    # Leave most of the window to the conversation and the answer: context is a means.
    ctx = build_context(doc, selection, counter=counter, max_tokens=min(window // 2, 24_000))
    return f"{question}\n\nContext from {file} ({ctx.enclosing or 'file'}):\n```{doc.language}\n{ctx.text}```"
