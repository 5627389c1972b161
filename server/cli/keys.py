"""`orchestrator keys`: the API keys clients present to `orchestrator serve`.

orchestrator keys create NAME     a new key, printed once on stdout (only its hash is stored)
orchestrator keys list            names, the key's first characters, created, revoked
orchestrator keys revoke NAME     refused from the next request on (within a second)
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from typing import Any


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "keys",
        help="create, list and revoke the API keys of the HTTP gateway",
        description="API keys for `orchestrator serve`. A key is shown once, when created; "
        "the data directory keeps only its SHA-256.",
    )
    actions = p.add_subparsers(dest="keys_action", metavar="ACTION", required=True)
    create = actions.add_parser("create", help="create a key and print it (once)")
    create.add_argument("name", help="who or what uses the key, e.g. ci or alice-laptop")
    listing = actions.add_parser("list", help="list keys (never the keys themselves)")
    listing.add_argument("--json", action="store_true", help="print JSON")
    revoke = actions.add_parser("revoke", help="revoke a key by name")
    revoke.add_argument("name")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from orchestrator.settings import load_settings
    from server.http.auth import KeyStore, keys_path

    path = keys_path(load_settings().data_dir)
    action = args.keys_action
    if action == "list" and not path.exists():
        print("[]" if args.json else "no keys yet; create one with `orchestrator keys create NAME`")
        return 0
    with KeyStore(path) as store:
        if action == "create":
            key = store.create(args.name)
            print(key, flush=True)
            print(
                f"orchestrator keys: created {args.name!r}. This is the only time the key is shown: store it now. "
                "Clients send it as `Authorization: Bearer KEY`.",
                file=sys.stderr,
            )
            return 0
        if action == "revoke":
            if not store.revoke(args.name):
                print(f"orchestrator keys: no active key named {args.name!r}", file=sys.stderr)
                return 1
            print(f"revoked {args.name}")
            return 0
        keys = store.list()
    if args.json:
        rows = [{"name": k.name, "hint": k.hint, "created": _iso(k.created), "revoked": _iso(k.revoked)} for k in keys]
        print(json.dumps(rows, indent=2))
        return 0
    if not keys:
        print("no keys yet; create one with `orchestrator keys create NAME`")
        return 0
    width = max(len("name"), *(len(k.name) for k in keys))
    print(f"{'name':<{width}}  {'key':<16}  {'created (UTC)':<20}  status")
    for k in keys:
        status = f"revoked {_iso(k.revoked)}" if k.revoked else "active"
        print(f"{k.name:<{width}}  {k.hint + '…':<16}  {_iso(k.created):<20}  {status}")
    return 0


def _iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S")


if __name__ == "__main__":
    # `python -m server.cli.keys ...` is `orchestrator keys ...`: one parser, one error handling.
    from server.cli import main

    sys.exit(main(["keys", *sys.argv[1:]]))
