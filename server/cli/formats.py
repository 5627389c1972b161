"""Output formats for `orchestrator analyze`: ruff-like text, JSON and SARIF 2.1.0.

Findings carry 0-based LSP-style positions; every format here is read by people or
tools that count from 1, so the conversion happens once, in this module.

Kept import-light (stdlib json/hashlib/pathlib/urllib only) because the CLI imports
it on every run, and formatting must not pull in the providers or the server.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from orchestrator.types import AnalysisKind, Finding, Range, Severity

__all__ = [
    "JSON_FORMAT_VERSION",
    "SARIF_SCHEMA_URI",
    "SARIF_VERSION",
    "dumps_sarif",
    "to_json",
    "to_sarif",
    "to_text",
]

JSON_FORMAT_VERSION = 1
SARIF_VERSION = "2.1.0"
# The errata01 URI is what GitHub's own CodeQL output points at, and it is the `id`
# of the schema the tests validate against.
SARIF_SCHEMA_URI = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
TOOL_NAME = "orchestrator"
TOOL_INFORMATION_URI = "https://github.com/orchestrator-dev/orchestrator"
SRCROOT = "%SRCROOT%"
FINGERPRINT_KEY = "primaryLocationLineHash"

# SARIF has no "info"/"hint"; both are advisory, which SARIF calls "note".
_LEVELS: dict[Severity, str] = {
    Severity.ERROR: "error",
    Severity.WARNING: "warning",
    Severity.INFO: "note",
    Severity.HINT: "note",
}
_LEVEL_RANK = {"none": 0, "note": 1, "warning": 2, "error": 3}
# GitHub code scanning only ranks security alerts by this CVSS-like score; the values
# sit inside its high/medium/low bands (>=7.0, >=4.0, >0.1).
_SECURITY_SEVERITY = {"error": "7.0", "warning": "5.0", "note": "3.0", "none": "0.0"}

_NO_PATH = "-"


def _sort_key(finding: Finding) -> tuple[str, int, int, str, str]:
    # rule and message break ties so that output is byte-identical across runs,
    # whatever order the analyzers happened to finish in.
    start = finding.range.start
    return (finding.path, start.line, start.character, finding.rule, finding.message)


def _sorted(findings: Iterable[Finding]) -> list[Finding]:
    return sorted(findings, key=_sort_key)


def _indent(text: str, first: str, rest: str) -> list[str]:
    # Continuation lines are indented so that `grep path:` still sees one line per finding.
    lines = text.splitlines() or [""]
    return [first + lines[0], *(rest + line for line in lines[1:])]


# --------------------------------------------------------------------------- text


def to_text(findings: Sequence[Finding]) -> str:
    """Ruff-like `path:line:col: kind/rule message` lines (1-based), plus `  help:` lines.

    Returns "" for no findings, otherwise newline-terminated text.
    """
    out: list[str] = []
    for f in _sorted(findings):
        start = f.range.start
        head = f"{f.path or _NO_PATH}:{start.line + 1}:{start.character + 1}: {f.kind.value}/{f.rule} "
        out.extend(_indent(f.message, head, "  "))
        if f.suggestion:
            out.extend(_indent(f.suggestion, "  help: ", "        "))
    return "\n".join(out) + "\n" if out else ""


# --------------------------------------------------------------------------- json


def _summary(findings: Sequence[Finding]) -> dict[str, Any]:
    # Every kind and severity is listed, zero or not, so consumers can index the
    # summary without guarding against missing keys.
    by_kind = {k.value: 0 for k in AnalysisKind}
    by_severity = {s.value: 0 for s in Severity}
    for f in findings:
        by_kind[f.kind.value] += 1
        by_severity[f.severity.value] += 1
    return {"total": len(findings), "by_kind": by_kind, "by_severity": by_severity}


def to_json(findings: Sequence[Finding]) -> str:
    """A JSON document: {"version": 1, "findings": [...], "summary": {...}}.

    Each finding is its `model_dump(mode="json")` (0-based range, as in the core) plus
    1-based "line"/"column" of its start; drop those two keys to validate it back into
    a Finding.
    """
    ordered = _sorted(findings)
    items: list[dict[str, Any]] = []
    for f in ordered:
        item = f.model_dump(mode="json")
        item["line"] = f.range.start.line + 1
        item["column"] = f.range.start.character + 1
        items.append(item)
    doc = {"version": JSON_FORMAT_VERSION, "findings": items, "summary": _summary(ordered)}
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


# --------------------------------------------------------------------------- sarif


def _normalised(rng: Range) -> tuple[tuple[int, int], tuple[int, int]]:
    start = (rng.start.line, rng.start.character)
    end = (rng.end.line, rng.end.character)
    # The model does not enforce start <= end; an inverted range would give SARIF an
    # invalid region, so treat it as the empty range at its start.
    return start, max(start, end)


def _result_region(rng: Range) -> dict[str, int]:
    """The region a viewer highlights for a result."""
    (sl, sc), (el, ec) = _normalised(rng)
    region = {"startLine": sl + 1, "startColumn": sc + 1}
    if (el, ec) == (sl, sc):
        # An empty range (e.g. Range.lines(n)) points at a spot, not a span; without
        # endColumn SARIF extends the region to the end of the line, which is what a
        # reader expects to see highlighted.
        region["endLine"] = sl + 1
    elif ec == 0 and el > sl:
        # LSP's "up to column 0 of the next line" means "through the end of the line
        # before"; saying so keeps the previous line from being highlighted too, and
        # avoids the endColumn 0 that SARIF forbids.
        region["endLine"] = el
    else:
        region["endLine"] = el + 1
        region["endColumn"] = ec + 1  # SARIF's endColumn is exclusive, like LSP's
    return region


def _edit_region(rng: Range) -> dict[str, int]:
    """The exact region a fix replaces; unlike a result's, it must include line ends."""
    (sl, sc), (el, ec) = _normalised(rng)
    # Column 1 of a later line is SARIF's way to say "including the line break";
    # equal start/end is an insertion point, which SARIF allows.
    return {"startLine": sl + 1, "startColumn": sc + 1, "endLine": el + 1, "endColumn": ec + 1}


class _Locator:
    """Turns finding paths into SARIF artifact locations, relative to `root` if possible."""

    def __init__(self, root: str | None) -> None:
        self.root = Path(root).absolute() if root is not None else None

    def base_ids(self) -> dict[str, Any]:
        if self.root is None:
            return {}
        uri = self.root.as_uri()
        # A uriBaseId must end in "/" or relative URIs would resolve against its parent.
        return {SRCROOT: {"uri": uri if uri.endswith("/") else uri + "/"}}

    def locate(self, path: str) -> dict[str, str]:
        # Relative paths are taken as relative to the working directory: that is how
        # the user named them on the command line.
        absolute = Path(path).absolute()
        if self.root is not None:
            try:
                rel = absolute.relative_to(self.root)
            except ValueError:
                pass
            else:
                # quote() with only "/" safe also escapes ":", so a first segment like
                # "c:x.py" cannot be mistaken for a URI scheme.
                return {"uri": quote(rel.as_posix(), safe="/"), "uriBaseId": SRCROOT}
        return {"uri": absolute.as_uri()}


def _line_text(path: str, line: int, sources: Mapping[str, str] | None, cache: dict[str, list[str]]) -> str:
    if path not in cache:
        text: str | None = None
        if sources is not None:
            text = sources.get(path)
        if text is None:
            try:
                text = Path(path).read_text(encoding="utf-8", errors="replace")
            except OSError:
                text = ""
        cache[path] = text.splitlines()
    lines = cache[path]
    return lines[line] if 0 <= line < len(lines) else ""


def _rule_name(rule_id: str) -> str:
    # SARIF wants a readable, identifier-like name ("UnsafeEval") distinct from the id;
    # derive one from the id's last segment since findings carry no rule title.
    tail = rule_id.rsplit("/", 1)[-1]
    words = "".join(c if c.isalnum() else " " for c in tail).split()
    return "".join(w[:1].upper() + w[1:] for w in words) or rule_id


def _is_absolute_uri(url: str) -> bool:
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    return bool(parts.scheme) and bool(parts.netloc or parts.path)


def _rule(rule_id: str, group: Sequence[Finding]) -> dict[str, Any]:
    level = max((_LEVELS[f.severity] for f in group), key=_LEVEL_RANK.__getitem__)
    kinds = sorted({f.kind.value for f in group})
    # Several models agreeing on a rule is the best precision signal we have.
    precision = "high" if max(f.agreement for f in group) > 1 else "medium"
    properties: dict[str, Any] = {"tags": kinds, "precision": precision}
    if AnalysisKind.SECURITY.value in kinds:
        properties["security-severity"] = _SECURITY_SEVERITY[level]
    descriptor: dict[str, Any] = {
        "id": rule_id,
        "name": _rule_name(rule_id),
        # No rule catalogue exists, so the first message stands in for a description.
        "shortDescription": {"text": group[0].message.splitlines()[0] if group[0].message else rule_id},
        "defaultConfiguration": {"level": level},
        "properties": properties,
    }
    help_uri = next((f.url for f in group if f.url and _is_absolute_uri(f.url)), None)
    if help_uri is not None:
        descriptor["helpUri"] = help_uri
    return descriptor


def _fingerprint(rule: str, uri: str, message: str, line_text: str) -> str:
    # Line text rather than line number, so an alert keeps its identity when code above
    # it moves; whitespace is stripped so re-indentation does not reopen it either.
    payload = f"{rule}\0{uri}\0{message}\0{line_text.strip()}"
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:32]


def _fix(f: Finding, location: dict[str, str]) -> dict[str, Any] | None:
    if f.fix is None or not f.fix.edits:
        return None  # SARIF requires at least one replacement
    replacements: list[dict[str, Any]] = []
    for edit in f.fix.edits:
        replacement: dict[str, Any] = {"deletedRegion": _edit_region(edit.range)}
        if edit.new_text:
            replacement["insertedContent"] = {"text": edit.new_text}
        replacements.append(replacement)
    return {
        "description": {"text": f.fix.description},
        "artifactChanges": [{"artifactLocation": dict(location), "replacements": replacements}],
    }


def to_sarif(
    findings: Sequence[Finding],
    *,
    tool_version: str,
    root: str | None = None,
    sources: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """A SARIF 2.1.0 log with one run.

    Paths under `root` become URIs relative to `%SRCROOT%` (declared in
    `originalUriBaseIds`); others become absolute file:// URIs. `sources` maps a
    finding's path to its text, for the fingerprints; paths missing from it are read
    from disk, and unreadable ones hash as an empty line.
    """
    ordered = _sorted(findings)
    locator = _Locator(root)

    groups: dict[str, list[Finding]] = {}
    for f in ordered:
        groups.setdefault(f.rule, []).append(f)
    rule_ids = sorted(groups)
    rule_index = {rule_id: i for i, rule_id in enumerate(rule_ids)}

    line_cache: dict[str, list[str]] = {}
    seen: dict[str, int] = {}
    results: list[dict[str, Any]] = []
    for f in ordered:
        text = f.message if not f.suggestion else f"{f.message}\nhelp: {f.suggestion}"
        result: dict[str, Any] = {
            "ruleId": f.rule,
            "ruleIndex": rule_index[f.rule],
            "level": _LEVELS[f.severity],
            "message": {"text": text},
        }
        uri = ""
        if f.path:
            location = locator.locate(f.path)
            uri = location["uri"]
            result["locations"] = [
                {"physicalLocation": {"artifactLocation": location, "region": _result_region(f.range)}}
            ]
            fix = _fix(f, location)
            if fix is not None:
                result["fixes"] = [fix]
        line_text = _line_text(f.path, f.range.start.line, sources, line_cache) if f.path else ""
        digest = _fingerprint(f.rule, uri, f.message, line_text)
        # Identical findings on identical lines (a repeated call, say) stay distinct
        # through an occurrence count, the same scheme GitHub uses for this key.
        seen[digest] = seen.get(digest, 0) + 1
        result["partialFingerprints"] = {FINGERPRINT_KEY: f"{digest}:{seen[digest]}"}
        result["properties"] = {"source": f.source, "agreement": f.agreement}
        results.append(result)

    run: dict[str, Any] = {
        "tool": {
            "driver": {
                "name": TOOL_NAME,
                "informationUri": TOOL_INFORMATION_URI,
                "version": tool_version,
                "semanticVersion": tool_version,
                "rules": [_rule(rule_id, groups[rule_id]) for rule_id in rule_ids],
            }
        },
        # Positions come from Python string indices, i.e. code points; SARIF consumers
        # would otherwise have to guess between that and UTF-16 units.
        "columnKind": "unicodeCodePoints",
        "results": results,
    }
    base_ids = locator.base_ids()
    if base_ids:
        run["originalUriBaseIds"] = base_ids
    return {"$schema": SARIF_SCHEMA_URI, "version": SARIF_VERSION, "runs": [run]}


def dumps_sarif(
    findings: Sequence[Finding],
    *,
    tool_version: str,
    root: str | None = None,
    sources: Mapping[str, str] | None = None,
) -> str:
    """`to_sarif` serialised; non-ASCII stays readable since SARIF files are UTF-8."""
    log = to_sarif(findings, tool_version=tool_version, root=root, sources=sources)
    return json.dumps(log, indent=2, ensure_ascii=False) + "\n"
