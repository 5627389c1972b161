"""`orchestrator config`: the effective settings, keys redacted, each with its source."""

from __future__ import annotations

import argparse
import json
from typing import Any


def add_parser(sub: Any) -> None:
    p = sub.add_parser("config", help="print the effective settings and where each value came from")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from orchestrator.settings import effective_settings, load_settings, user_config_path

    settings = load_settings()
    rows = effective_settings(settings)
    if args.json:
        print(json.dumps([{"key": k, "value": v, "source": s} for k, v, s in rows], indent=2))
        return 0
    width = max(len(k) for k, _v, _s in rows)
    print(f"# user file: {user_config_path()}  workspace file: ./orchestrator.toml")
    for key, value, source in rows:
        print(f"{key:<{width}} = {json.dumps(value):<40} # {source}")
    configured = settings.configured_providers()
    print(f"# providers ready: {', '.join(configured) if configured else 'none (built-in analyzers only)'}")
    return 0
