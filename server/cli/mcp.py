"""`orchestrator mcp`: serve the orchestrator's tools to agent clients over MCP.

stdio by default (stdout is the protocol: everything else goes to stderr); `--http
[HOST:]PORT` serves streamable HTTP at /mcp instead, on 127.0.0.1 unless HOST says
otherwise. Also runnable as `python -m server.cli.mcp`.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from typing import Any

TOKEN_ENV = "ORCHESTRATOR_MCP_TOKEN"


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "mcp",
        help="serve the tools to agent clients over MCP (stdio, or --http)",
        description="Serve analyze_code, review_diff, ask, consensus, explain, fix, generate_tests, list_models "
        "and usage_report to MCP clients (Claude Desktop, Claude Code, Cursor, VS Code).",
    )
    _arguments(p)
    p.set_defaults(handler=run)


def _arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--http",
        metavar="[HOST:]PORT",
        help="serve streamable HTTP at http://HOST:PORT/mcp instead of stdio (HOST defaults to 127.0.0.1)",
    )
    p.add_argument("--token", help=f"HTTP: require 'Authorization: Bearer TOKEN' (default: ${TOKEN_ENV})")
    p.add_argument(
        "--root",
        action="append",
        metavar="DIR",
        help="where tools may read files when the client declares no roots (default: the working directory); "
        "repeatable",
    )


def parse_address(spec: str) -> tuple[str, int]:
    from orchestrator.errors import InvalidInputError

    host, sep, port = spec.rpartition(":")
    if not sep:
        host, port = "", spec
    host = host.strip("[]") or "127.0.0.1"
    if not port.isdigit() or int(port) > 65535:
        raise InvalidInputError(f"--http {spec!r}: expected [HOST:]PORT, e.g. 8765 or 0.0.0.0:8765")
    return host, int(port)


def run(args: argparse.Namespace) -> int:
    import anyio

    from orchestrator.errors import InvalidInputError
    from orchestrator.settings import load_settings
    from server.mcp import create_server, serve_http, serve_stdio

    for root in args.root or ():
        if not os.path.isdir(root):
            raise InvalidInputError(f"--root {root}: not a directory")
    settings = load_settings()  # a bad config fails here, with its message, before any client connects
    server = create_server(settings=settings, roots=args.root)
    if args.http:
        host, port = parse_address(args.http)
        token = args.token or os.environ.get(TOKEN_ENV) or None
        # uvicorn shuts down gracefully on SIGTERM, then re-raises it: end with status 0 then.
        signal.signal(signal.SIGTERM, _terminated)
        anyio.run(serve_http, server, host, port, token)
    else:
        if args.token:
            print("orchestrator mcp: --token applies to --http only; stdio needs none", file=sys.stderr)
        anyio.run(serve_stdio, server)
    return 0


def _terminated(_signum: int, _frame: object) -> None:
    raise SystemExit(0)


if __name__ == "__main__":
    # `python -m server.cli.mcp ...` is `orchestrator mcp ...`: one parser, one error handling.
    from server.cli import main

    sys.exit(main(["mcp", *sys.argv[1:]]))
