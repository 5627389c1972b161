"""`orchestrator analyze` and `config` from outside: exit codes, formats, bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

from server.cli import main

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "flawed_project"
SCHEMA = json.loads((ROOT / "tests" / "data" / "sarif-schema-2.1.0.json").read_text())


@pytest.fixture(autouse=True)
def isolated_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The user's own config and keys must not leak into what these tests see.
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    for name in list(os.environ):
        if name.endswith(("_API_KEY", "_BASE_URL")) or name.startswith("AI_"):
            monkeypatch.delenv(name)


def test_clean_file_exits_0(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    clean = tmp_path / "clean.py"
    clean.write_text('"""A clean module."""\n\nVALUE = 1\n')
    assert main(["analyze", str(clean), "--kind", "security,style,performance"]) == 0
    out, err = capsys.readouterr()
    assert out == "" and "No findings in 1 file" in err


def test_findings_exit_1_with_ruff_like_text(capsys: pytest.CaptureFixture[str]) -> None:
    auth = EXAMPLE / "inventory" / "auth.py"
    assert main(["analyze", str(auth), "--kind", "security"]) == 1
    out, _ = capsys.readouterr()
    lines = out.splitlines()
    assert f"{auth}:19:5: security/B602 subprocess call with shell=True identified, security issue." in out
    assert any(line.startswith(f"{auth}:6:") and "security/ORC-S002" in line for line in lines)
    assert "AKIAIOSFODNN7EXAMPLE" not in out


def test_json_output_is_parseable(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["analyze", str(EXAMPLE / "inventory"), "--kind", "style", "--format", "json"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert data["summary"]["total"] == len(data["findings"]) > 0
    assert {f["kind"] for f in data["findings"]} == {"style"}


def test_sarif_output_validates_against_the_schema(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    report = tmp_path / "report.sarif"
    assert main(["analyze", str(EXAMPLE), "--format", "sarif", "-o", str(report)]) == 1
    log = json.loads(report.read_text())
    jsonschema.Draft4Validator(SCHEMA).validate(log)
    results = log["runs"][0]["results"]
    kinds = {tag for rule in log["runs"][0]["tool"]["driver"]["rules"] for tag in rule["properties"]["tags"]}
    assert kinds == {"security", "style", "performance", "refactoring", "testing"}
    assert all(r["locations"][0]["physicalLocation"]["region"]["startLine"] >= 1 for r in results)


def test_unknown_kind_lists_valid_ones(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["analyze", str(EXAMPLE), "--kind", "security,speed"]) == 2
    err = capsys.readouterr().err
    assert "unknown analysis kind 'speed'" in err
    assert "performance, security, style, refactoring, testing" in err


def test_missing_path_exits_2_but_reports_the_rest(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = tmp_path / "ok.py"
    good.write_text("import os\n")
    assert main(["analyze", str(tmp_path / "nope.py"), str(good), "--kind", "style"]) == 2
    out, err = capsys.readouterr()
    assert "nope.py: no such file or directory" in err
    assert "style/F401" in out


def test_directory_of_binaries(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bins = tmp_path / "bins"
    bins.mkdir()
    (bins / "a.bin").write_bytes(bytes(range(256)) * 4)
    (bins / "b.pyc").write_bytes(b"\x00\x01\x02garbage")
    assert main(["analyze", str(bins)]) == 0
    err = capsys.readouterr().err
    assert "no text files to analyze" in err and "Traceback" not in err


def test_non_utf8_file_is_skipped_with_a_message(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    latin = tmp_path / "latin.py"
    latin.write_bytes("name = 'café'\n".encode("latin-1"))
    assert main(["analyze", str(latin)]) == 0
    assert "not UTF-8 text" in capsys.readouterr().err


def test_syntax_error_is_a_finding(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    broken = tmp_path / "broken.py"
    broken.write_text("def f(:\n    return 1\n")
    assert main(["analyze", str(broken)]) == 1
    out = capsys.readouterr().out
    assert f"{broken}:1:7: style/syntax-error" in out


def test_bad_config_exits_2_naming_file_and_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "orchestrator.toml").write_text("[analysis]\nmax_complexity = 'high'\n")
    monkeypatch.chdir(tmp_path)
    assert main(["analyze", "."]) == 2
    err = capsys.readouterr().err
    assert f"{tmp_path / 'orchestrator.toml'}:2:" in err and "analysis.max_complexity" in err


def test_config_command_redacts_and_shows_sources(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key = "sk-ant-" + "k3y" * 12
    monkeypatch.setenv("ANTHROPIC_API_KEY", key)
    monkeypatch.chdir(tmp_path)
    assert main(["config", "--json"]) == 0
    rows = {r["key"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["providers.anthropic.api_key"] == {
        "key": "providers.anthropic.api_key",
        "value": "***",
        "source": "env ANTHROPIC_API_KEY",
    }
    assert main(["config"]) == 0
    out = capsys.readouterr().out
    assert key not in out and "providers ready: anthropic" in out


def test_console_script_runs_in_a_fresh_process() -> None:
    """As a user runs it: a new interpreter, the README's example, no traceback."""
    proc = subprocess.run(
        [sys.executable, "-m", "server.cli", "analyze", "examples/flawed_project"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    for kind in ("security", "style", "performance", "refactoring", "testing"):
        assert f": {kind}/" in proc.stdout
