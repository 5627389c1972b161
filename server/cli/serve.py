"""`orchestrator serve`: the HTTP gateway (OpenAI-compatible API, `/api/ai/`, metrics, usage page).

Once it accepts connections it prints its base URL alone on stdout (for scripts; with
`--port 0` the OS picks the port), and a human line on stderr.
"""

from __future__ import annotations

import argparse
import ipaddress
import logging
import sys
from typing import Any

DEFAULT_PORT = 8787
DEFAULT_MAX_BODY = 4 * 1024 * 1024


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "serve",
        help="run the HTTP gateway: OpenAI-compatible API, code analysis, metrics, usage page",
        description="Serve the orchestrator over HTTP: /v1/chat/completions and /v1/models for any OpenAI SDK, "
        "/api/ai/* (chat, code analysis, usage, conversations, providers), /health, /metrics (Prometheus) and "
        "a usage page at /. Clients need a key from `orchestrator keys create NAME` unless --no-auth.",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT}; 0: any free one)")
    p.add_argument(
        "--no-auth", action="store_true", help="accept requests without an API key (loopback addresses only)"
    )
    p.add_argument(
        "--cors-origin",
        action="append",
        default=[],
        metavar="ORIGIN",
        help="let browser pages from ORIGIN call the API (repeat for several); without it CORS is off",
    )
    p.add_argument(
        "--max-body",
        type=int,
        default=DEFAULT_MAX_BODY,
        metavar="BYTES",
        help=f"largest request body accepted (default {DEFAULT_MAX_BODY:,})",
    )
    p.add_argument("--access-log", action="store_true", help="log every request to stderr")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    import asyncio

    if args.no_auth and not _loopback(args.host):
        print(
            f"orchestrator serve: --no-auth is only allowed on a loopback address, not {args.host}; "
            "create a key with `orchestrator keys create NAME` instead",
            file=sys.stderr,
        )
        return 2
    if args.max_body < 1:
        print("orchestrator serve: --max-body must be at least 1", file=sys.stderr)
        return 2
    return asyncio.run(_serve(args))


async def _serve(args: argparse.Namespace) -> int:
    import asyncio

    from orchestrator.core import Orchestrator
    from orchestrator.settings import load_settings
    from server.http.app import GatewayConfig, create_app
    from server.http.auth import KeyStore, keys_path
    from server.http.serving import Server, bind

    settings = load_settings()
    keys_file = keys_path(settings.data_dir)
    if not args.no_auth:
        with KeyStore(keys_file) as store:
            active = len(store.active())
        if not active:
            print(
                "orchestrator serve: no API keys yet, so every API call will get 401; "
                "create one with `orchestrator keys create NAME` (it works at once, no restart)",
                file=sys.stderr,
            )
    try:
        sock = bind(args.host, args.port)
    except OSError as exc:
        print(f"orchestrator serve: cannot listen on {args.host}:{args.port}: {exc.strerror}", file=sys.stderr)
        return 2
    config = GatewayConfig(
        auth=not args.no_auth, keys_file=keys_file, cors_origins=list(args.cors_origin), max_body=args.max_body
    )
    orch = await Orchestrator.create(settings, front_end="http")
    app = None
    try:
        app = create_app(orch, config)
        level = "info" if logging.getLogger().getEffectiveLevel() <= logging.INFO else "warning"
        server = Server(app, sock, access_log=args.access_log, log_level=level)
        serving = asyncio.create_task(server.run_until_stopped())
        ready = asyncio.create_task(server.ready.wait())
        await asyncio.wait((serving, ready), return_when=asyncio.FIRST_COMPLETED)
        if server.ready.is_set():
            url = server.url
            print(url, flush=True)
            auth = "API key required" if config.auth else "no API key required"
            print(
                f"orchestrator serve: {url} ({auth}); OpenAI base URL {url}/v1, usage page {url}/, metrics {url}/metrics",
                file=sys.stderr,
                flush=True,
            )
        ready.cancel()
        await serving
    finally:
        if app is not None and app.state.keys is not None:
            app.state.keys.close()
        await orch.close()
        sock.close()
    return 0


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


if __name__ == "__main__":
    # `python -m server.cli.serve ...` is `orchestrator serve ...`: one parser, one error handling.
    from server.cli import main

    sys.exit(main(["serve", *sys.argv[1:]]))
