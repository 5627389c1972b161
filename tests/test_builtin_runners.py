"""Security (bandit, secrets) and style (ruff) analyzers on files with known defects."""

from __future__ import annotations

import textwrap
from pathlib import Path

from orchestrator.analyzers import bandit_runner, ruff_runner, secrets
from orchestrator.types import AnalysisKind, Document, Severity

# Built from pieces so that this test file itself does not look like it holds secrets.
AWS_ID = "AKIA" + "Q3EGRUNTIMEEXAMPL"[:16]
OPENAI_KEY = "sk-proj-" + "Zx81Kq" * 7
PEM = "-----BEGIN RSA " + "PRIVATE KEY-----"


def test_secrets_scan_any_text_file_exact_lines() -> None:
    text = "\n".join(
        [
            "# deploy settings",  # 0
            f"AWS_ACCESS_KEY_ID={AWS_ID}",  # 1
            "OPENAI_API_KEY=your-api-key-here",  # 2: placeholder
            f'openai: "{OPENAI_KEY}"',  # 3
            'db_password: "Tr0ub4dor&3-x9Qz"',  # 4
            'password: "changeme"',  # 5: placeholder
            PEM,  # 6
            "MIIEowIBAAKCAQEA...",  # 7
        ]
    )
    findings = secrets.scan(Document(path="deploy/.env.yaml", text=text))
    assert [(f.range.start.line, f.rule) for f in findings] == [
        (1, "ORC-S002"),
        (3, "ORC-S002"),
        (4, "ORC-S003"),
        (6, "ORC-S001"),
    ]
    assert all(f.kind is AnalysisKind.SECURITY and f.suggestion for f in findings)
    for f in findings:
        assert AWS_ID not in f.message and OPENAI_KEY not in f.message and "Tr0ub4dor" not in f.message
    aws = findings[0]
    assert (aws.range.start.character, aws.range.end.character) == (18, 18 + len(AWS_ID))
    assert "AWS access key id" in aws.message


def test_secrets_scan_ignores_ordinary_code() -> None:
    code = 'token = request.headers.get("Authorization")\npassword = getpass.getpass()\nkey = "sk-..."\n'
    assert secrets.scan(Document(path="app.py", text=code)) == []


FLAWED = textwrap.dedent(
    """\
    import hashlib
    import subprocess


    def run(cmd, data):
        subprocess.call(cmd, shell=True)
        digest = hashlib.md5(data).hexdigest()
        return eval(digest)


    PASSWORD = "s3cr3t-Value-9"
    """
)


def test_bandit_in_process_on_an_unsaved_buffer() -> None:
    doc = Document(path="never/saved.py", text=FLAWED, language="python")
    findings = bandit_runner.scan([doc])
    by_rule = {f.rule: f for f in findings}
    assert {r: f.range.start.line for r, f in by_rule.items()} == {
        "B404": 1,
        "B602": 5,
        "B324": 6,
        "B307": 7,
        "B105": 10,
    }
    assert by_rule["B602"].severity is Severity.ERROR
    assert by_rule["B602"].url and by_rule["B602"].url.startswith("https://bandit.readthedocs.io/")
    assert "s3cr3t" not in by_rule["B105"].message  # bandit quotes it; we do not
    # Columns are characters on the flagged line.
    line = FLAWED.splitlines()[5]
    assert line[by_rule["B602"].range.start.character :].startswith("subprocess.call")


def test_bandit_skips_assert_in_tests_only() -> None:
    src = "def test_x():\n    assert 1 + 1 == 2\n"
    test_doc = Document(path="tests/test_x.py", text=src, language="python")
    app_doc = Document(path="app/x.py", text=src, language="python")
    findings = bandit_runner.scan([test_doc, app_doc], test_files={"tests/test_x.py"})
    assert [(f.path, f.rule) for f in findings] == [("app/x.py", "B101")]


STYLE = textwrap.dedent(
    """\
    import os
    import json


    def check(value):
        if value == None:
            return json.dumps(value)
    """
)


async def test_ruff_on_a_buffer_via_stdin() -> None:
    doc = Document(path="pkg/mod.py", text=STYLE, language="python")
    findings = await ruff_runner.scan([doc], ["E", "F"])
    got = {(f.rule, f.range.start.line) for f in findings}
    assert ("F401", 0) in got and ("E711", 5) in got
    unused = next(f for f in findings if f.rule == "F401")
    assert unused.kind is AnalysisKind.STYLE and unused.source == "orchestrator/ruff"
    assert unused.fix is not None  # removing an unused import is a safe fix
    edit = unused.fix.edits[0]
    assert (edit.range.start.line, edit.range.end.line, edit.new_text) == (0, 1, "")
    e711 = next(f for f in findings if f.rule == "E711")
    assert e711.fix is None  # ruff marks it unsafe: we never offer it as a quick fix
    assert e711.url and "ruff" in e711.url


async def test_ruff_one_process_for_files_on_disk(tmp_path: Path) -> None:
    a = tmp_path / "a.py"
    b = tmp_path / "b.py"
    a.write_text("import os\n")
    b.write_text("x = 1\nimport sys\n")
    docs = [Document(path=str(p), text=p.read_text(), language="python", on_disk=True) for p in (a, b)]
    findings = await ruff_runner.scan(docs, ["E", "F"])
    got = sorted((Path(f.path).name, f.rule, f.range.start.line) for f in findings)
    assert ("a.py", "F401", 0) in got and ("b.py", "E402", 1) in got and ("b.py", "F401", 1) in got
