"""`orchestrator analyze PATH...`: the built-in analyzers from the command line.

Exit status: 0 no findings, 1 findings, 2 an error (bad option, missing path, bad config).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

# Directories that hold other people's code or generated files, never the user's.
SKIP_DIRS = {
    ".git",
    ".hg",
    ".svn",
    ".venv",
    "venv",
    "env",
    "node_modules",
    "__pycache__",
    "build",
    "dist",
    "site-packages",
    ".mypy_cache",
    ".ruff_cache",
    ".pytest_cache",
    ".tox",
    ".nox",
    ".idea",
    ".vscode",
}
MAX_FILE_BYTES = 2 * 1024 * 1024


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "analyze",
        help="analyze files with the built-in analyzers (no key, no network)",
        description="Analyze files or directories. Exit 0: no findings; 1: findings; 2: error.",
    )
    p.add_argument("paths", nargs="+", metavar="PATH", help="files or directories")
    p.add_argument(
        "--kind",
        action="append",
        metavar="KINDS",
        help="comma-separated: performance, security, style, refactoring, testing (default: all)",
    )
    p.add_argument("--format", choices=("text", "json", "sarif"), default="text", help="output format")
    p.add_argument("-o", "--output", metavar="FILE", help="write the report to FILE instead of stdout")
    p.set_defaults(handler=run)


def parse_kinds(values: list[str] | None, default: list[Any]) -> list[Any]:
    from orchestrator.errors import InvalidInputError
    from orchestrator.types import AnalysisKind

    if not values:
        return list(default)
    kinds = []
    valid = ", ".join(k.value for k in AnalysisKind)
    for value in values:
        for name in (v.strip().lower() for v in value.split(",")):
            if not name:
                continue
            try:
                kind = AnalysisKind(name)
            except ValueError:
                raise InvalidInputError(f"unknown analysis kind {name!r}; valid kinds: {valid}") from None
            if kind not in kinds:
                kinds.append(kind)
    if not kinds:
        raise InvalidInputError(f"no analysis kind given; valid kinds: {valid}")
    return kinds


def run(args: argparse.Namespace) -> int:
    # Bandit is the slowest analyzer: start its worker and hand it the files before our own
    # imports (pydantic, settings), so that both cores work from the first milliseconds.
    worker = None
    if not args.kind or any("security" in value for value in args.kind):
        from orchestrator.analyzers.bandit_worker import BanditWorker

        worker = BanditWorker.start()
    try:
        files, notes, missing = collect_files(args.paths)
        if worker is not None:
            worker.submit((path, text) for path, text in files if path.endswith((".py", ".pyi")))

        import asyncio

        from orchestrator.settings import load_settings

        settings = load_settings()
        kinds = parse_kinds(args.kind, settings.analysis.kinds)
        files = [(p, t) for p, t in files if not any(Path(p).match(x) for x in settings.analysis.exclude)]
        return asyncio.run(_analyze(args, settings, kinds, worker, files, notes, missing))
    finally:
        if worker is not None:
            worker.close()


async def _analyze(
    args: argparse.Namespace,
    settings: Any,
    kinds: list[Any],
    worker: Any,
    files: list[tuple[str, str]],
    notes: list[str],
    missing: list[str],
) -> int:
    from orchestrator.context import language_of
    from orchestrator.providers.builtin import BuiltinAnalyzer
    from orchestrator.types import Document

    docs = [Document(path=p, text=t, language=language_of(p), on_disk=True) for p, t in files]
    report = await BuiltinAnalyzer(settings.analysis, bandit_worker=worker).analyze(docs, kinds)
    for note in notes + report.notes:
        print(f"orchestrator analyze: {note}", file=sys.stderr)
    for path in missing:
        print(f"orchestrator analyze: {path}: no such file or directory", file=sys.stderr)

    text = render(report.findings, args.format, {d.path: d.text for d in docs})
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
    elif text:
        sys.stdout.write(text)
        sys.stdout.flush()
    if args.format == "text":
        _summary(report.findings, len(docs))
    if missing:
        return 2
    return 1 if report.findings else 0


def render(findings: list[Any], fmt: str, sources: dict[str, str]) -> str:
    from orchestrator import __version__

    from . import formats

    if fmt == "json":
        return formats.to_json(findings) + "\n"
    if fmt == "sarif":
        return formats.dumps_sarif(findings, tool_version=__version__, root=os.getcwd(), sources=sources) + "\n"
    return formats.to_text(findings)


def _summary(findings: list[Any], files: int) -> None:
    if not findings:
        print(f"No findings in {files} file{'s' if files != 1 else ''}.", file=sys.stderr)
        return
    fixable = sum(1 for f in findings if f.fix)
    extra = f" ({fixable} with a safe fix)" if fixable else ""
    print(f"Found {len(findings)} finding{'s' if len(findings) != 1 else ''} in {files} files{extra}.", file=sys.stderr)


def collect_files(paths: list[str]) -> tuple[list[tuple[str, str]], list[str], list[str]]:
    """Read every text file under `paths` (stdlib only: this runs before the core is imported).

    Returns (path and text pairs, notes on skipped files, missing paths).
    """
    files: list[tuple[str, str]] = []
    notes: list[str] = []
    missing: list[str] = []
    seen: set[str] = set()

    def add(path: Path, explicit: bool) -> None:
        key = str(path.resolve())
        if key in seen:
            return
        seen.add(key)
        try:
            size = path.stat().st_size
            if size > MAX_FILE_BYTES:
                notes.append(f"{path}: skipped, larger than {MAX_FILE_BYTES // (1024 * 1024)} MB")
                return
            data = path.read_bytes()
        except OSError as exc:
            notes.append(f"{path}: skipped, cannot read ({exc.strerror})")
            return
        if b"\0" in data[:8192]:
            if explicit:
                notes.append(f"{path}: skipped, binary file")
            return
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            notes.append(f"{path}: skipped, not UTF-8 text (invalid byte at offset {exc.start})")
            return
        files.append((str(path), text))

    for raw in paths:
        root = Path(raw)
        if root.is_file():
            add(root, explicit=True)
        elif root.is_dir():
            before = len(files)
            for dirpath, dirnames, filenames in os.walk(root):
                dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS and not d.startswith("."))
                for name in sorted(filenames):
                    add(Path(dirpath) / name, explicit=False)
            if len(files) == before:
                notes.append(f"{raw}: no text files to analyze")
        else:
            missing.append(raw)
    return files, notes, missing
