"""`orchestrator models`: list the catalog with prices, limits and capabilities.

Kept import-light so `--help` stays fast: the catalog arrives already loaded.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from orchestrator.catalog import Catalog, ModelInfo

_HEADERS = ("id", "context", "max out", "$in/M", "$out/M", "caps", "quality", "latency")
# Numbers read best right-aligned; names and capability lists left-aligned.
_RIGHT = {"context", "max out", "$in/M", "$out/M", "quality", "latency"}


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "models",
        help="list known models with prices and capabilities",
        description="List the model catalog: context window, output limit, USD per million tokens, "
        "capabilities, quality rank and typical latency.",
    )
    parser.add_argument("--json", action="store_true", help="print a JSON list instead of a table")
    parser.add_argument("--provider", metavar="P", help="only models served by provider P")
    parser.add_argument(
        "--capability", metavar="C", help="only models with capability C (chat, fim, json, tools, vision)"
    )


def run(args: argparse.Namespace, catalog: Catalog) -> int:
    provider = getattr(args, "provider", None)
    capability = getattr(args, "capability", None)
    if capability is not None:
        from orchestrator.catalog import CAPABILITY_NAMES

        if capability not in CAPABILITY_NAMES:
            print(f"unknown capability {capability!r}; valid: {', '.join(CAPABILITY_NAMES)}", file=sys.stderr)
            return 2
    if provider is not None and provider not in catalog.providers():
        print(f"no models for provider {provider!r}; known: {', '.join(catalog.providers())}", file=sys.stderr)
        return 2

    models = catalog.filter(provider=provider, capability=capability)
    if getattr(args, "json", False):
        print(json.dumps([info.model_dump(mode="json") for info in models], indent=2))
        return 0

    print(_table([_row(info) for info in models]))
    print(
        f"\n{len(models)} model(s). Prices in USD per million tokens, checked {catalog.prices_checked}; "
        "each entry's own date is `prices_as_of` in --json."
    )
    return 0


def _row(info: ModelInfo) -> tuple[str, ...]:
    caps = ",".join(sorted(c.value for c in info.capabilities))
    return (
        info.id,
        f"{info.context_window:,}",
        f"{info.max_output:,}",
        _money(info.input_per_mtok),
        _money(info.output_per_mtok),
        caps,
        str(info.quality),
        f"{info.latency_ms}ms",
    )


def _money(value: float) -> str:
    if value == 0:
        return "free"
    # Two decimals for most prices, three for the sub-cent ones (0.075) so none reads as 0.07.
    text = f"{value:.3f}"
    return text.removesuffix("0")


def _table(rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(_HEADERS)]
    lines = []
    for cells in (_HEADERS, *rows):
        parts = [
            cell.rjust(width) if header in _RIGHT else cell.ljust(width)
            for header, cell, width in zip(_HEADERS, cells, widths, strict=True)
        ]
        lines.append("  ".join(parts).rstrip())
    return "\n".join(lines)
