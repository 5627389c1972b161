"""Secrets scan: API keys, tokens and private keys in any text file.

Messages name the kind of secret, never its value: findings end up in logs, SARIF
uploads and chat prompts, and echoing the key there would leak it a second time.

Rules:
    ORC-S001  private key block
    ORC-S002  provider API key or token with a recognisable prefix (OpenAI, Anthropic,
              Google, AWS, GitHub, Slack, Stripe, ...)
    ORC-S003  hard-coded credential assigned to a name like api_key/secret/token/password
    ORC-S004  JSON Web Token
"""

from __future__ import annotations

import math
import re
from collections import Counter

from ..types import AnalysisKind, Document, Finding, Range, Severity

SOURCE = "orchestrator/secrets"
_SUGGESTION = (
    "Remove it from the file, rotate the credential (it may already be in history), and load it "
    "from an environment variable or a secret store."
)

_PREFIXED: list[tuple[str, re.Pattern[str]]] = [
    ("Anthropic API key", re.compile(r"\bsk-ant-[A-Za-z0-9_\-]{20,}")),
    ("OpenAI API key", re.compile(r"\bsk-(?:proj-|svcacct-|admin-)?(?!ant-)[A-Za-z0-9_\-]{32,}")),
    ("OpenRouter API key", re.compile(r"\bsk-or-v1-[a-f0-9]{32,}")),
    ("Google API key", re.compile(r"\bAIza[0-9A-Za-z_\-]{35}\b")),
    ("AWS access key id", re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b")),
    ("AWS secret access key", re.compile(r"(?i)aws_?secret_?access_?key\s*[:=]\s*[\"']?[A-Za-z0-9/+=]{40}\b")),
    ("GitHub token", re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{40,})\b")),
    ("Slack token", re.compile(r"\bxox[abprs]-[A-Za-z0-9\-]{10,}")),
    ("Stripe secret key", re.compile(r"\b[sr]k_live_[A-Za-z0-9]{20,}")),
    ("Hugging Face token", re.compile(r"\bhf_[A-Za-z]{34}\b")),
    ("GitLab token", re.compile(r"\bglpat-[A-Za-z0-9_\-]{20}\b")),
]
_PRIVATE_KEY = re.compile(r"-----BEGIN (?:RSA |EC |DSA |OPENSSH |PGP |ENCRYPTED )?PRIVATE KEY(?: BLOCK)?-----")
_ASSIGNED = re.compile(
    r"(?i)(?P<name>[A-Za-z0-9_\-]*(?:api[_\-]?key|secret|token|passw(?:or)?d|pwd|auth[_\-]?key|access[_\-]?key))"
    r"[\"']?\s*(?::|=|:=|=>)\s*(?P<q>[\"'])(?P<value>[^\"'\s]{8,})(?P=q)"
)
_JWT = re.compile(r"\beyJ[A-Za-z0-9_\-]{10,}\.eyJ[A-Za-z0-9_\-]{10,}\.[A-Za-z0-9_\-]{10,}")
_PLACEHOLDER = re.compile(
    r"(?i)^(x+|\*+|\.+|<.*>|\$\{.*\}|\{\{.*\}\}|%\(.*\)s|your[_\-].*|changeme|example.*|dummy.*|test.*|fake.*|"
    r"placeholder.*|redacted|none|null|todo.*|sk-\.\.\.|.*\.\.\.)$"
)


def _entropy(value: str) -> float:
    counts = Counter(value)
    return -sum(n / len(value) * math.log2(n / len(value)) for n in counts.values())


def scan(doc: Document) -> list[Finding]:
    findings: list[Finding] = []
    taken: list[tuple[int, int, int]] = []

    def add(line: int, start: int, end: int, rule: str, severity: Severity, what: str) -> None:
        # One secret, one finding: the generic pattern often matches a prefixed key again.
        if any(line == t_line and start < t_end and t_start < end for t_line, t_start, t_end in taken):
            return
        taken.append((line, start, end))
        findings.append(
            Finding(
                kind=AnalysisKind.SECURITY,
                severity=severity,
                range=Range.of(line, start, line, end),
                message=f"possible {what} in source",
                rule=rule,
                source=SOURCE,
                suggestion=_SUGGESTION,
                path=doc.path,
            )
        )

    for number, line in enumerate(doc.text.splitlines()):
        if len(line) > 20_000:  # minified bundles: the patterns would crawl
            line = line[:20_000]
        match = _PRIVATE_KEY.search(line)
        if match:
            add(number, match.start(), match.end(), "ORC-S001", Severity.ERROR, "private key")
        for what, pattern in _PREFIXED:
            for match in pattern.finditer(line):
                add(number, match.start(), match.end(), "ORC-S002", Severity.ERROR, what)
        for match in _ASSIGNED.finditer(line):
            value = match.group("value")
            if _PLACEHOLDER.match(value) or _entropy(value) < 3.0 or value.isidentifier() and value.islower():
                continue
            add(
                number,
                match.start("value"),
                match.end("value"),
                "ORC-S003",
                Severity.WARNING,
                f"hard-coded credential ({match.group('name')})",
            )
        for match in _JWT.finditer(line):
            add(number, match.start(), match.end(), "ORC-S004", Severity.WARNING, "JSON Web Token")
    return findings
