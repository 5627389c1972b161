"""Parsing models' findings: located by their quote, garbage dropped, merged, consensus."""

from __future__ import annotations

import json
import textwrap

from orchestrator.analysis import extract_json, locate, merge_consensus, merge_with_builtin, parse_findings
from orchestrator.types import AnalysisKind, Document, Finding, Range, Severity

CODE = textwrap.dedent(
    """\
    import sqlite3


    def find(conn, name):
        query = "SELECT * FROM users WHERE name = '%s'" % name
        return conn.execute(query).fetchall()


    def total(items):
        result = 0
        for item in items:
            result = result + item.price
        return result
    """
)
DOC = Document(path="app/db.py", text=CODE, language="python")
KINDS = [AnalysisKind.SECURITY, AnalysisKind.PERFORMANCE]


def answer(*items: dict) -> str:
    return json.dumps({"findings": list(items)})


def test_findings_are_located_by_their_quote_not_the_models_line() -> None:
    text = answer(
        {
            "kind": "security",
            "severity": "high",
            "line": 9,  # wrong line: the model miscounted
            "code": "query = \"SELECT * FROM users WHERE name = '%s'\" % name",
            "message": "SQL built with string formatting is injectable",
            "suggestion": "Use placeholders",
            "replacement": 'query = "SELECT * FROM users WHERE name = ?"',
        }
    )
    [finding] = parse_findings(text, DOC, KINDS, source="ai/test-model")
    assert finding.range.start.line == 4 and finding.range.end.line == 4
    assert finding.range.start.character == 4
    assert finding.severity is Severity.ERROR and finding.rule == "ai-security" and finding.source == "ai/test-model"
    assert finding.fix is not None and finding.fix.edits[0].new_text.startswith('query = "SELECT')


def test_multiline_quote_reindented_and_gutter_numbers() -> None:
    quote = "for item in items:\n    result = result + item.price"
    gutter = " 11 |     for item in items:\n 12 |         result = result + item.price"
    for code in (quote, gutter):
        [f] = parse_findings(
            answer({"kind": "performance", "line": 11, "code": code, "message": "use sum()"}), DOC, KINDS, source="ai/m"
        )
        assert (f.range.start.line, f.range.end.line) == (10, 11)


def test_garbage_is_dropped() -> None:
    text = answer(
        {"kind": "security", "line": 5, "code": "os.system(user_input)", "message": "not in the file"},
        {"kind": "style", "line": 5, "code": "import sqlite3", "message": "kind not asked for"},
        {"kind": "security", "line": "five", "code": "", "message": "empty quote"},
        {"kind": "telepathy", "line": 1, "code": "import sqlite3", "message": "unknown kind"},
        "a string, not an object",
        {"kind": "performance", "line": "line 10", "code": "result = 0", "message": "fine one", "severity": "low"},
    )
    findings = parse_findings(text, DOC, KINDS, source="ai/m")
    assert [(f.kind, f.range.start.line, f.severity) for f in findings] == [
        (AnalysisKind.PERFORMANCE, 9, Severity.INFO)
    ]
    assert parse_findings("I could not analyze this, sorry.", DOC, KINDS, source="ai/m") == []
    assert parse_findings('{"findings": "none"}', DOC, KINDS, source="ai/m") == []


def test_json_in_fences_or_prose() -> None:
    assert extract_json('Here you go:\n```json\n{"findings": []}\n```\nDone.') == {"findings": []}
    assert extract_json('Sure! {"findings": [1]} hope it helps') == {"findings": [1]}
    assert extract_json("no json") is None


def test_nearest_occurrence_wins() -> None:
    lines = ["x = 1", "y = 2", "x = 1", "z = 3", "x = 1"]
    assert locate("x = 1", lines, 3) == Range.of(2, 0, 2, 5)
    assert locate("x = 1", lines, 4) == Range.of(4, 0, 4, 5)
    assert locate("nope", lines, 0) is None


def _finding(kind: AnalysisKind, line: int, message: str, source: str = "s") -> Finding:
    return Finding(
        kind=kind, severity=Severity.WARNING, range=Range.lines(line), message=message, rule="r", source=source
    )


def test_merge_with_builtin_drops_ai_duplicates_only() -> None:
    builtin = [_finding(AnalysisKind.SECURITY, 4, "SQL injection: query built with string formatting")]
    ai = [
        _finding(AnalysisKind.SECURITY, 4, "Possible SQL injection through string formatting of the query"),
        _finding(AnalysisKind.SECURITY, 4, "Fetching all rows loads the whole table into memory"),
        _finding(AnalysisKind.PERFORMANCE, 11, "Use sum() instead of a manual loop"),
    ]
    merged = merge_with_builtin(builtin, ai)
    assert [f.message for f in merged] == [
        builtin[0].message,
        "Fetching all rows loads the whole table into memory",
        "Use sum() instead of a manual loop",
    ]


def test_consensus_keeps_what_models_agree_on_with_counts() -> None:
    per_model = {
        "a": [_finding(AnalysisKind.SECURITY, 4, "injection"), _finding(AnalysisKind.PERFORMANCE, 11, "slow loop")],
        "b": [_finding(AnalysisKind.SECURITY, 4, "sql injection risk")],
        "c": [_finding(AnalysisKind.SECURITY, 4, "unsafe query"), _finding(AnalysisKind.STYLE, 1, "naming")],
    }
    merged = merge_consensus(per_model)
    assert [(f.kind, f.agreement) for f in merged] == [(AnalysisKind.SECURITY, 3)]
    assert merged[0].source == "ai/consensus"
    everything = merge_consensus(per_model, min_agreement=1)
    assert sorted((f.kind.value, f.agreement) for f in everything) == [
        ("performance", 1),
        ("security", 3),
        ("style", 1),
    ]


def test_form_feed_does_not_shift_lines() -> None:
    text = "x = 1\n\x0c\ndef f():\n    return eval(x)\n"
    doc = Document(path="ff.py", text=text, language="python")
    found = parse_findings(
        answer({"kind": "security", "line": 4, "code": "return eval(x)", "message": "eval of data"}),
        doc,
        KINDS,
        source="ai/m",
    )
    assert [f.range.start.line for f in found] == [3]  # as ast and editors count, not str.splitlines()
