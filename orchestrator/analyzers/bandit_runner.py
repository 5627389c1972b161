"""Bandit, in-process: one manager for a batch of documents, no subprocess.

Bandit reads files from disk in its CLI; its manager also parses any file-like object,
which lets us scan editor buffers that were never saved.
"""

from __future__ import annotations

import io
import logging
import re
from collections.abc import Sequence

from ..types import AnalysisKind, Document, Finding, Range, Severity

SOURCE = "orchestrator/bandit"
_SEVERITY = {"HIGH": Severity.ERROR, "MEDIUM": Severity.WARNING, "LOW": Severity.INFO}
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


def scan(docs: Sequence[Document], test_files: set[str] | None = None) -> list[Finding]:
    from bandit.core import config as b_config
    from bandit.core import docs_utils
    from bandit.core import manager as b_manager

    test_files = test_files or set()
    mgr = b_manager.BanditManager(b_config.BanditConfig(), "file", quiet=True)
    by_name = {doc.path: doc for doc in docs}
    for doc in docs:
        mgr.files_list.append(doc.path)
        # The file list is bandit's own bookkeeping: it drops a name it could not parse.
        mgr._parse_file(doc.path, io.BytesIO(doc.text.encode("utf-8")), list(mgr.files_list))
    for name, reason in mgr.skipped:
        log.debug("bandit skipped %s: %s", name, reason)

    findings: list[Finding] = []
    for issue in mgr.get_issue_list():
        doc = by_name.get(issue.fname)
        if doc is None or (doc.path in test_files and issue.test_id in _SKIP_IN_TESTS):
            continue
        line = max(0, issue.lineno - 1)
        start, end = _columns(doc, line, issue.col_offset, issue.end_col_offset)
        cwe = f" ({issue.cwe})" if issue.cwe and issue.cwe.id else ""
        text = issue.text
        if issue.test_id in _ECHOES_SECRET:
            # Bandit quotes the password it found; a report must not spread it further.
            text = re.sub(r":\s*'.*'\s*$", "", text)
        findings.append(
            Finding(
                kind=AnalysisKind.SECURITY,
                severity=_SEVERITY.get(str(issue.severity).upper(), Severity.WARNING),
                range=Range.of(line, start, line, end),
                message=f"{text} [confidence {str(issue.confidence).lower()}]",
                rule=issue.test_id,
                source=SOURCE,
                suggestion=_suggestion(issue.test_id, cwe),
                path=doc.path,
                url=docs_utils.get_url(issue.test_id),
            )
        )
    return findings


def _columns(doc: Document, line: int, col: int | None, end_col: int | None) -> tuple[int, int]:
    """Bandit gives UTF-8 byte offsets of the node; editors count characters."""
    lines = doc.text.splitlines()
    text = lines[line] if line < len(lines) else ""
    raw = text.encode("utf-8")

    def to_char(offset: int | None, default: int) -> int:
        if offset is None or offset < 0:
            return default
        return len(raw[:offset].decode("utf-8", errors="ignore"))

    start = to_char(col, 0)
    end = to_char(end_col, len(text))
    return start, end if end > start else len(text)


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


def _suggestion(test_id: str, cwe: str) -> str:
    return _ADVICE.get(test_id, "Review this call; see the linked bandit documentation.") + cwe
