"""Bandit through its API: one manager for a batch of documents, no per-file process.

Bandit reads files from disk in its CLI; its manager also parses any file-like object,
which lets us scan editor buffers that were never saved.

`raw_scan` needs neither pydantic nor the rest of the core, so the same code also runs as
a worker (`python -m orchestrator.analyzers.bandit_runner`, JSON on stdin and stdout):
the command line starts it before its own imports, and bandit then works on the second
core while the parent runs the other analyzers.
"""

from __future__ import annotations

import io
import json
import logging
import re
import sys
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..types import Document, Finding

SOURCE = "orchestrator/bandit"
_SEVERITY = {"HIGH": "error", "MEDIUM": "warning", "LOW": "info"}
# In tests, assert is the point, and a subprocess call is usually a fixture: bandit's own
# advice is to skip these there.
_SKIP_IN_TESTS = {"B101", "B404", "B603", "B607"}
_ECHOES_SECRET = {"B105", "B106", "B107"}

log = logging.getLogger(__name__)


class _OptionalFormatterFilter(logging.Filter):
    """Bandit's plugin loader reports its SARIF formatter as broken when the optional
    sarif_om package is absent; we never use bandit's formatters, so that is noise."""

    def filter(self, record: logging.LogRecord) -> bool:
        if "Could not load" in record.getMessage() and "sarif" in record.getMessage():
            log.debug("bandit: %s", record.getMessage())
            return False
        return True


logging.getLogger("stevedore.extension").addFilter(_OptionalFormatterFilter())


def raw_scan(files: Iterable[tuple[str, str]], test_files: Iterable[str] = ()) -> list[dict[str, Any]]:
    """Scan (path, text) pairs; return plain dicts with 0-based line and character columns."""
    from bandit.core import config as b_config
    from bandit.core import docs_utils
    from bandit.core import manager as b_manager

    skip_tests = set(test_files)
    texts = dict(files)
    mgr = b_manager.BanditManager(b_config.BanditConfig(), "file", quiet=True)
    for path, text in texts.items():
        mgr.files_list.append(path)
        # The file list is bandit's own bookkeeping: it drops a name it could not parse.
        mgr._parse_file(path, io.BytesIO(text.encode("utf-8")), list(mgr.files_list))
    for name, reason in mgr.skipped:
        log.debug("bandit skipped %s: %s", name, reason)

    out = []
    for issue in mgr.get_issue_list():
        text = texts.get(issue.fname)
        if text is None or (issue.fname in skip_tests and issue.test_id in _SKIP_IN_TESTS):
            continue
        line = max(0, issue.lineno - 1)
        start, end = _columns(text, line, issue.col_offset, issue.end_col_offset)
        message = issue.text
        if issue.test_id in _ECHOES_SECRET:
            # Bandit quotes the password it found; a report must not spread it further.
            message = re.sub(r":\s*'.*'\s*$", "", message)
        cwe = f" ({issue.cwe})" if issue.cwe and issue.cwe.id else ""
        out.append(
            {
                "path": issue.fname,
                "line": line,
                "start": start,
                "end": end,
                "rule": issue.test_id,
                "severity": _SEVERITY.get(str(issue.severity).upper(), "warning"),
                "message": f"{message} [confidence {str(issue.confidence).lower()}]",
                "suggestion": _ADVICE.get(issue.test_id, "Review this call; see the linked bandit documentation.")
                + cwe,
                "url": docs_utils.get_url(issue.test_id),
            }
        )
    return out


def to_findings(raw: Iterable[dict[str, Any]]) -> list[Finding]:
    from ..types import AnalysisKind, Finding, Range, Severity

    return [
        Finding(
            kind=AnalysisKind.SECURITY,
            severity=Severity(item["severity"]),
            range=Range.of(item["line"], item["start"], item["line"], item["end"]),
            message=item["message"],
            rule=item["rule"],
            source=SOURCE,
            suggestion=item["suggestion"],
            path=item["path"],
            url=item["url"],
        )
        for item in raw
    ]


def scan(docs: Sequence[Document], test_files: set[str] | None = None) -> list[Finding]:
    return to_findings(raw_scan(((d.path, d.text) for d in docs), test_files or ()))


def _columns(text: str, line: int, col: int | None, end_col: int | None) -> tuple[int, int]:
    """Bandit gives UTF-8 byte offsets of the node; editors count characters."""
    lines = text.splitlines()
    line_text = lines[line] if line < len(lines) else ""
    raw = line_text.encode("utf-8")

    def to_char(offset: int | None, default: int) -> int:
        if offset is None or offset < 0:
            return default
        return len(raw[:offset].decode("utf-8", errors="ignore"))

    start = to_char(col, 0)
    end = to_char(end_col, len(line_text))
    return start, end if end > start else len(line_text)


_ADVICE = {
    "B102": "Avoid exec(); dispatch on known names instead.",
    "B105": "Load the secret from the environment or a secret store.",
    "B106": "Load the secret from the environment or a secret store.",
    "B107": "Do not default a password argument to a literal.",
    "B108": "Use tempfile.mkstemp() or TemporaryDirectory() instead of a fixed /tmp path.",
    "B110": "Log the exception, or catch a narrower one.",
    "B112": "Log the exception, or catch a narrower one.",
    "B113": "Pass timeout= so a stalled server cannot hang the caller.",
    "B201": "Never run Flask with debug=True outside development.",
    "B301": "Do not unpickle untrusted data; use json.",
    "B303": "Use hashlib.sha256 or better.",
    "B307": "Use ast.literal_eval() for literals; never eval() input.",
    "B311": "Use the secrets module for anything security-related.",
    "B324": "Use hashlib.sha256, or pass usedforsecurity=False for non-security hashes.",
    "B501": "Keep certificate verification on (verify=True).",
    "B506": "Use yaml.safe_load().",
    "B602": "Pass a list of arguments with shell=False.",
    "B605": "Use subprocess.run([...]) with a list of arguments, not a shell string.",
    "B608": "Use parameterized queries (placeholders), never string formatting, for SQL.",
}


def _worker() -> int:
    """Read {"files": [[path, text], ...], "tests": [...]} on stdin, write the issues as JSON."""
    # Import bandit before the request arrives: that is the part worth overlapping.
    from bandit.core import manager  # noqa: F401

    request = json.load(sys.stdin)
    json.dump(raw_scan((tuple(pair) for pair in request["files"]), request.get("tests", ())), sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(_worker())
