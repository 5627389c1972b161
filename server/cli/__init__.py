"""The `orchestrator` command. Each subcommand imports what it needs when it runs, so
that `orchestrator lsp` is not slowed by what `orchestrator analyze` uses."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence


def build_parser() -> argparse.ArgumentParser:
    from . import analyze, chat, config, keys, lsp, mcp, models, serve, usage

    parser = argparse.ArgumentParser(
        prog="orchestrator",
        description="Many AI models behind your editor: analysis, chat, completion, with routing and a cost ledger.",
    )
    parser.add_argument("-v", "--verbose", action="count", default=0, help="log more (to stderr); repeat for debug")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    analyze.add_parser(sub)
    chat.add_parser(sub)
    usage.add_parser(sub)
    serve.add_parser(sub)
    keys.add_parser(sub)
    mcp.add_parser(sub)
    lsp.add_parser(sub)
    config.add_parser(sub)
    models.add_parser(sub)
    sub.choices["models"].set_defaults(handler=_models)
    return parser


def _models(args: argparse.Namespace) -> int:
    from orchestrator.catalog import Catalog
    from orchestrator.settings import load_settings

    from . import models

    settings = load_settings()
    catalog = Catalog.load(settings.models, source=settings.source_of("models"))
    return models.run(args, catalog)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        stream=sys.stderr,
        level=logging.WARNING - 10 * min(args.verbose, 2),
        format="%(levelname)s %(name)s: %(message)s",
    )
    if not args.command:
        parser.print_help(sys.stderr)
        return 2
    from orchestrator.errors import OrchestratorError

    try:
        return int(args.handler(args))
    except OrchestratorError as exc:
        print(f"orchestrator {args.command}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # `orchestrator analyze . | head`: the reader left; that is not our error.
        sys.stderr.close()
        return 0


def run() -> None:
    sys.exit(main())
