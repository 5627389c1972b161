"""Output formats of `orchestrator analyze`: text, JSON and SARIF 2.1.0."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from orchestrator.types import AnalysisKind, Finding, Fix, Range, Severity, TextEdit
from server.cli.formats import SARIF_SCHEMA_URI, dumps_sarif, to_json, to_sarif, to_text

SCHEMA_PATH = Path(__file__).parent / "data" / "sarif-schema-2.1.0.json"


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    return json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))


def validate(log: dict[str, Any], schema: dict[str, Any]) -> None:
    # The brief asks for Draft 7; the OASIS file itself declares draft-04, so check
    # against the validator it names as well. Both pass or the log is wrong.
    for cls in (jsonschema.Draft7Validator, jsonschema.validators.validator_for(schema)):
        cls(schema, format_checker=cls.FORMAT_CHECKER).validate(log)
    # Constraints the schema cannot express (SARIF §3.30): a region may not end before it starts.
    for result in log["runs"][0]["results"]:
        regions = [loc["physicalLocation"]["region"] for loc in result.get("locations", [])]
        for fix in result.get("fixes", []):
            for change in fix["artifactChanges"]:
                regions += [r["deletedRegion"] for r in change["replacements"]]
        for region in regions:
            assert region["endLine"] >= region["startLine"]
            if region["endLine"] == region["startLine"] and "endColumn" in region:
                assert region["endColumn"] >= region["startColumn"]


def finding(
    path: str,
    rng: Range,
    *,
    kind: AnalysisKind = AnalysisKind.STYLE,
    severity: Severity = Severity.WARNING,
    rule: str = "E501",
    message: str = "Line too long",
    **extra: Any,
) -> Finding:
    return Finding(
        kind=kind, severity=severity, range=rng, message=message, rule=rule, source="ruff", path=path, **extra
    )


def sample(base: Path | None = None) -> list[Finding]:
    """One of each case; `base` anchors the "inside" paths (relative when None)."""

    def inside(rel: str) -> str:
        return rel if base is None else str(base / rel)

    outside = "/elsewhere/lib/util.py" if base is None else str(base.parent / "elsewhere" / "util.py")
    return [
        finding(
            inside("src/app.py"),
            Range.of(9, 4, 9, 15),
            kind=AnalysisKind.SECURITY,
            severity=Severity.ERROR,
            rule="B307",
            message="Use of possibly insecure function eval",
            suggestion="Use ast.literal_eval",
            url="https://bandit.readthedocs.io/en/latest/blacklists/blacklist_calls.html#b307-eval",
            fix=Fix(
                description="Replace eval with ast.literal_eval",
                edits=(
                    TextEdit(range=Range.of(9, 4, 9, 8), new_text="ast.literal_eval"),
                    # Deletes whole line 0, newline included: ends at column 0 of line 1.
                    TextEdit(range=Range.lines(0, 1), new_text=""),
                ),
            ),
        ),
        finding(inside("src/app.py"), Range.of(2, 0, 2, 130)),
        finding(inside("src/app.py"), Range.of(2, 0, 2, 130), agreement=3),  # an exact duplicate but for agreement
        # Ends at column 0 of a later line: SARIF has no endColumn 0.
        finding(
            inside("src/app.py"),
            Range.of(4, 2, 6, 0),
            kind=AnalysisKind.REFACTORING,
            severity=Severity.HINT,
            rule="extract-function",
            message="Extract this block into a function",
        ),
        finding(
            outside,
            Range.lines(0),
            kind=AnalysisKind.PERFORMANCE,
            severity=Severity.INFO,
            rule="perf/quadratic-loop",
            message="Nested loop over the same list",
        ),
        finding(
            inside("src/naïve dir/ünï.py"),
            Range.of(0, 0, 0, 3),
            kind=AnalysisKind.TESTING,
            severity=Severity.HINT,
            rule="missing-test",
            message="No test covers this function",
        ),
    ]


# --------------------------------------------------------------------------- text


def test_text_lines_are_sorted_one_based_with_help() -> None:
    assert to_text(sample()).splitlines() == [
        "/elsewhere/lib/util.py:1:1: performance/perf/quadratic-loop Nested loop over the same list",
        "src/app.py:3:1: style/E501 Line too long",
        "src/app.py:3:1: style/E501 Line too long",
        "src/app.py:5:3: refactoring/extract-function Extract this block into a function",
        "src/app.py:10:5: security/B307 Use of possibly insecure function eval",
        "  help: Use ast.literal_eval",
        "src/naïve dir/ünï.py:1:1: testing/missing-test No test covers this function",
    ]


def test_text_multiline_and_pathless() -> None:
    f = finding("", Range.lines(0), message="first\nsecond", suggestion="do this\nthen that")
    assert to_text([f]) == "-:1:1: style/E501 first\n  second\n  help: do this\n        then that\n"


def test_text_empty() -> None:
    assert to_text([]) == ""


# --------------------------------------------------------------------------- json


def test_json_round_trip_and_summary() -> None:
    findings = sample()
    doc = json.loads(to_json(findings))
    assert doc["version"] == 1
    assert doc["summary"] == {
        "total": 6,
        "by_kind": {"performance": 1, "security": 1, "style": 2, "refactoring": 1, "testing": 1},
        "by_severity": {"error": 1, "warning": 2, "info": 1, "hint": 2},
    }
    first = doc["findings"][0]
    assert (first["path"], first["line"], first["column"]) == ("/elsewhere/lib/util.py", 1, 1)
    back = []
    for item in doc["findings"]:
        start = item["range"]["start"]
        assert (item.pop("line"), item.pop("column")) == (start["line"] + 1, start["character"] + 1)
        back.append(Finding.model_validate(item))
    assert sorted(back, key=repr) == sorted(findings, key=repr)
    assert "naïve" in to_json(findings)  # UTF-8 kept readable, not \u-escaped


def test_json_empty() -> None:
    doc = json.loads(to_json([]))
    assert doc["findings"] == [] and doc["summary"]["total"] == 0
    assert set(doc["summary"]["by_kind"]) == {k.value for k in AnalysisKind}
    assert not any(doc["summary"]["by_severity"].values())


# --------------------------------------------------------------------------- sarif


@pytest.fixture
def root(tmp_path: Path) -> Path:
    # resolve(): the cwd-relative test compares against os.getcwd(), which is resolved.
    path = tmp_path.resolve() / "repo"
    path.mkdir()
    return path


def by_rule(log: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for result in log["runs"][0]["results"]:
        out.setdefault(result["ruleId"], []).append(result)
    return out


def region(result: dict[str, Any]) -> dict[str, int]:
    return result["locations"][0]["physicalLocation"]["region"]


def artifact(result: dict[str, Any]) -> dict[str, str]:
    return result["locations"][0]["physicalLocation"]["artifactLocation"]


def test_sarif_validates_and_has_expected_values(root: Path, schema: dict[str, Any]) -> None:
    log = to_sarif(sample(root), tool_version="0.1.0", root=str(root))
    validate(log, schema)
    assert log["$schema"] == SARIF_SCHEMA_URI and log["version"] == "2.1.0" and len(log["runs"]) == 1
    run = log["runs"][0]
    driver = run["tool"]["driver"]
    assert driver["name"] == "orchestrator"
    assert driver["informationUri"] == "https://github.com/orchestrator-dev/orchestrator"
    assert driver["semanticVersion"] == "0.1.0"
    assert run["originalUriBaseIds"] == {"%SRCROOT%": {"uri": root.as_uri() + "/"}}

    rules = driver["rules"]
    assert [r["id"] for r in rules] == ["B307", "E501", "extract-function", "missing-test", "perf/quadratic-loop"]
    results = by_rule(log)
    assert len(run["results"]) == 6 and len(results["E501"]) == 2
    for result in run["results"]:
        assert rules[result["ruleIndex"]]["id"] == result["ruleId"]
    assert {rule_id: rs[0]["level"] for rule_id, rs in results.items()} == {
        "B307": "error",
        "E501": "warning",
        "extract-function": "note",
        "missing-test": "note",
        "perf/quadratic-loop": "note",
    }

    b307 = rules[0]
    assert b307["name"] == "B307"
    assert b307["shortDescription"] == {"text": "Use of possibly insecure function eval"}
    assert b307["helpUri"].startswith("https://bandit.readthedocs.io/")
    assert b307["defaultConfiguration"] == {"level": "error"}
    assert b307["properties"] == {"tags": ["security"], "precision": "medium", "security-severity": "7.0"}
    assert rules[1]["properties"] == {"tags": ["style"], "precision": "high"}  # agreement 3
    assert rules[2]["name"] == "ExtractFunction" and "helpUri" not in rules[2]

    sec = results["B307"][0]
    assert sec["message"]["text"] == "Use of possibly insecure function eval\nhelp: Use ast.literal_eval"
    assert artifact(sec) == {"uri": "src/app.py", "uriBaseId": "%SRCROOT%"}
    assert region(sec) == {"startLine": 10, "startColumn": 5, "endLine": 10, "endColumn": 16}
    assert sec["fixes"] == [
        {
            "description": {"text": "Replace eval with ast.literal_eval"},
            "artifactChanges": [
                {
                    "artifactLocation": {"uri": "src/app.py", "uriBaseId": "%SRCROOT%"},
                    "replacements": [
                        {
                            "deletedRegion": {"startLine": 10, "startColumn": 5, "endLine": 10, "endColumn": 9},
                            "insertedContent": {"text": "ast.literal_eval"},
                        },
                        # Exact, newline included: up to column 1 of the next line.
                        {"deletedRegion": {"startLine": 1, "startColumn": 1, "endLine": 2, "endColumn": 1}},
                    ],
                }
            ],
        }
    ]

    # Range (4,2)-(6,0): through the end of 0-based line 5, i.e. 1-based line 6, no endColumn 0.
    assert region(results["extract-function"][0]) == {"startLine": 5, "startColumn": 3, "endLine": 6}
    # An empty range at a line start: the whole line.
    perf = results["perf/quadratic-loop"][0]
    assert region(perf) == {"startLine": 1, "startColumn": 1, "endLine": 1}
    assert artifact(perf) == {"uri": (root.parent / "elsewhere" / "util.py").as_uri()}
    assert artifact(results["missing-test"][0]) == {
        "uri": "src/na%C3%AFve%20dir/%C3%BCn%C3%AF.py",
        "uriBaseId": "%SRCROOT%",
    }


def test_sarif_without_root_uses_file_uris(root: Path, schema: dict[str, Any]) -> None:
    log = to_sarif(sample(root), tool_version="0.1.0")
    validate(log, schema)
    run = log["runs"][0]
    assert "originalUriBaseIds" not in run
    for result in run["results"]:
        assert artifact(result)["uri"].startswith("file:///") and "uriBaseId" not in artifact(result)
    unicode_uri = artifact(by_rule(log)["missing-test"][0])["uri"]
    assert unicode_uri == (root / "src" / "naïve dir" / "ünï.py").as_uri()
    assert "%C3%AF" in unicode_uri and " " not in unicode_uri


def test_sarif_relative_paths_are_taken_from_cwd(
    root: Path, schema: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(root)
    log = to_sarif([finding("src/x.py", Range.of(0, 0, 0, 1))], tool_version="0.1.0", root=".")
    validate(log, schema)
    assert artifact(log["runs"][0]["results"][0]) == {"uri": "src/x.py", "uriBaseId": "%SRCROOT%"}


@pytest.mark.parametrize(
    "findings",
    [
        [],
        [finding("", Range.lines(0))],  # no path: no location, still a valid result
        [finding("a.py", Range.of(3, 7, 3, 7))],  # empty range mid-line
        [finding("a.py", Range.of(5, 2, 3, 0))],  # inverted range
        [finding("a:b.py", Range.lines(0, 2), fix=Fix(description="noop", edits=()))],
        [finding("a.py", Range.lines(0), url="not a url")],
    ],
    ids=["empty", "pathless", "point", "inverted", "colon-and-empty-fix", "bad-url"],
)
def test_sarif_edge_cases_validate(
    findings: list[Finding], root: Path, schema: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(root)
    log = json.loads(dumps_sarif(findings, tool_version="0.1.0", root=str(root)))
    validate(log, schema)
    run = log["runs"][0]
    assert len(run["results"]) == len(findings)
    assert len(run["tool"]["driver"]["rules"]) == len({f.rule for f in findings})
    for result in run["results"]:
        assert "fixes" not in result
        for loc in result.get("locations", []):
            assert ":" not in loc["physicalLocation"]["artifactLocation"]["uri"]
        assert "helpUri" not in run["tool"]["driver"]["rules"][result["ruleIndex"]]


def test_sarif_region_of_point_and_inverted_ranges(root: Path) -> None:
    point, inverted = to_sarif(
        [finding(str(root / "a.py"), Range.of(3, 7, 3, 7)), finding(str(root / "b.py"), Range.of(5, 2, 3, 0))],
        tool_version="0.1.0",
        root=str(root),
    )["runs"][0]["results"]
    assert region(point) == {"startLine": 4, "startColumn": 8, "endLine": 4}
    assert region(inverted) == {"startLine": 6, "startColumn": 3, "endLine": 6}


def test_sarif_fingerprints_follow_line_text_not_line_number(root: Path) -> None:
    path = str(root / "a.py")

    def fingerprints(text: str, line: int, copies: int = 1) -> list[str]:
        log = to_sarif(
            [finding(path, Range.lines(line))] * copies, tool_version="0", root=str(root), sources={path: text}
        )
        return [r["partialFingerprints"]["primaryLocationLineHash"] for r in log["runs"][0]["results"]]

    before = fingerprints("x = 1\ny = 2\n", 1)
    assert before == fingerprints("x = 1\ny = 2\n", 1)  # stable
    assert before == fingerprints("\n\nx = 1\n    y = 2\n", 3)  # moved down and re-indented
    assert before != fingerprints("x = 1\ny = 3\n", 1)  # the flagged line changed
    twice = fingerprints("x = 1\ny = 2\n", 1, copies=2)
    assert [fp.rsplit(":", 1)[1] for fp in twice] == ["1", "2"] and len({fp.rsplit(":", 1)[0] for fp in twice}) == 1


def test_sarif_fingerprints_read_the_file_when_no_sources(root: Path) -> None:
    (root / "a.py").write_text("print(1)\n", encoding="utf-8")
    on_disk = to_sarif([finding(str(root / "a.py"), Range.lines(0))], tool_version="0", root=str(root))
    given = to_sarif(
        [finding(str(root / "a.py"), Range.lines(0))],
        tool_version="0",
        root=str(root),
        sources={str(root / "a.py"): "print(1)\n"},
    )
    assert on_disk["runs"][0]["results"] == given["runs"][0]["results"]


def test_dumps_sarif_is_utf8_json(root: Path) -> None:
    text = dumps_sarif(sample(root), tool_version="0.1.0", root=str(root))
    assert json.loads(text) == to_sarif(sample(root), tool_version="0.1.0", root=str(root))
    assert text.endswith("\n")


def test_vendored_schema_is_sarif_2_1_0(schema: dict[str, Any]) -> None:
    assert schema["title"] == "Static Analysis Results Format (SARIF) Version 2.1.0 JSON Schema"
    assert schema["id"] == SARIF_SCHEMA_URI
    assert schema["properties"]["version"]["enum"] == ["2.1.0"]
    jsonschema.Draft7Validator.check_schema(schema)
    jsonschema.validators.validator_for(schema).check_schema(schema)
