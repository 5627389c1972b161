"""Tests for the built-in ast analyzers: performance, refactoring and testing."""

from __future__ import annotations

import ast
import os
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from orchestrator.analyzers import performance, refactoring, testing
from orchestrator.analyzers._ast_util import Lines
from orchestrator.types import AnalysisKind, Document, Finding, Fix, Severity


def _doc(src: str, path: str = "pkg/mod.py") -> tuple[Document, ast.Module]:
    text = textwrap.dedent(src)
    return Document(path=path, text=text, language="python"), ast.parse(text)


def _run(check: Callable[..., list[Finding]], src: str, path: str = "pkg/mod.py", **kwargs: int) -> list[Finding]:
    doc, tree = _doc(src, path)
    return check(doc, tree, **kwargs)


def _lines(findings: list[Finding], rule: str | None = None) -> list[int]:
    return [f.line for f in findings if rule is None or f.rule == rule]


def _apply(text: str, fix: Fix) -> str:
    """Apply a fix's edits (0-based line/character ranges) to `text`."""
    lines = text.split("\n")
    starts = [0]
    for line in lines:
        starts.append(starts[-1] + len(line) + 1)
    for edit in sorted(fix.edits, key=lambda e: (e.range.start.line, e.range.start.character), reverse=True):
        start = starts[edit.range.start.line] + edit.range.start.character
        end = starts[edit.range.end.line] + edit.range.end.character
        text = text[:start] + edit.new_text + text[end:]
    return text


def _check_common(findings: list[Finding], kind: AnalysisKind, source: str, path: str = "pkg/mod.py") -> None:
    for finding in findings:
        assert finding.kind is kind
        assert finding.source == source
        assert finding.path == path
        assert finding.suggestion
        assert finding.message


# -- performance --------------------------------------------------------------------------


def test_membership_against_list_in_loop() -> None:
    findings = _run(
        performance.check,
        """\
        ALLOWED = ["a", "b"]
        SEEN = {"a"}


        def f(items, names: list[str], other):
            local = [x for x in other]
            for x in items:
                if x in ALLOWED:
                    pass
                if x not in local:
                    pass
                if x in names:
                    pass
                if x in SEEN:
                    pass
                if x in other:
                    pass
                if x in [1, 2, 3]:
                    pass
                row = [x, 1]
                if 1 in row:
                    pass
            return [y for y in items if y in ALLOWED]


        if "a" in ALLOWED:
            pass
        """,
    )
    assert _lines(findings) == [7, 9, 11, 17, 22]
    assert {f.rule for f in findings} == {"ORC-P101"}
    assert [f.severity for f in findings] == [Severity.WARNING] * 3 + [Severity.INFO, Severity.WARNING]
    assert "'ALLOWED'" in findings[0].message and "set" in (findings[0].suggestion or "")
    _check_common(findings, AnalysisKind.PERFORMANCE, "orchestrator/performance")


def test_membership_name_rebound_to_set_is_not_flagged() -> None:
    findings = _run(
        performance.check,
        """\
        def f(items):
            wanted = ["a", "b"]
            wanted = set(wanted)
            for x in items:
                if x in wanted:
                    pass

            class Config:
                names = ["x"]

                def run(self, items):
                    for x in items:
                        if x in names:
                            pass
        """,
    )
    assert findings == []


def test_string_concatenation_in_loop() -> None:
    findings = _run(
        performance.check,
        """\
        def f(items, n, obj):
            out = ""
            total = 0
            parts = []
            for x in items:
                out += x
                total += x
                parts += [x]
                n += 1
                obj.text += f"{x}"
            while n:
                msg = ""
                msg += "x"
                n -= 1
            out += "end"
            return out
        """,
    )
    assert _lines(findings, "ORC-P102") == [5, 9]
    assert findings[0].severity is Severity.WARNING
    assert "join" in (findings[0].suggestion or "")


def test_pop_and_insert_at_front_in_loop() -> None:
    findings = _run(
        performance.check,
        """\
        from collections import deque


        def bfs(start, graph):
            queue = [start]
            seen = {}
            dq = deque()
            while queue:
                node = queue.pop(0)
                seen.pop(0)
                dq.insert(0, node)
                queue.insert(0, node)
                queue.pop()
                queue.pop(1)
            queue.pop(0)
            return [graph.pop(0) for _ in range(3)]
        """,
    )
    assert _lines(findings, "ORC-P103") == [8, 11, 15]
    assert [f.severity for f in findings] == [Severity.WARNING, Severity.WARNING, Severity.INFO]
    assert "deque" in (findings[0].suggestion or "")


def test_re_compile_in_loop() -> None:
    findings = _run(
        performance.check,
        """\
        import re
        import re as regex
        from re import compile as rc

        WORD = re.compile(r"\\w+")


        def f(lines, words, pattern):
            for line in lines:
                re.compile(r"\\d+").match(line)
                regex.compile("x")
                rc("y")
                re.compile(words[line])
                WORD.match(line)
                re.compile(pattern)
            compiled = [re.compile(p) for p in words]
            return compiled
        """,
    )
    assert _lines(findings, "ORC-P104") == [9, 10, 11, 14]
    assert [f.severity for f in findings] == [Severity.WARNING] * 3 + [Severity.INFO]
    assert "module level" in (findings[0].suggestion or "")


def test_nested_loops_over_same_collection() -> None:
    findings = _run(
        performance.check,
        """\
        def f(xs, ys, data):
            for a in xs:
                for b in ys:
                    pass
                for c in xs:
                    pass
            for i in range(3):
                for j in range(3):
                    pass
            for k, v in data.items():
                if any(v == w for w in data.values()):
                    pass
                for k2, v2 in data.items():
                    pass
            pairs = [(a, b) for a in xs for b in xs]
            return pairs
        """,
    )
    assert _lines(findings, "ORC-P105") == [4, 12, 14]
    assert findings[0].range.start.character == 8
    assert findings[0].severity is Severity.INFO
    assert "'xs'" in findings[0].message


def test_sorted_first_and_last_are_fixed_to_min_max() -> None:
    src = """\
    def f(xs, words):
        lo = sorted(xs)[0]
        hi = sorted(xs)[-1]
        longest = sorted(words, key=len, reverse=True)[0]
        smallest = sorted(x * 2 for x in xs)[0]
        shortest = sorted(words, key=lambda w: len(w), reverse=True)[-1]
        second = sorted(xs)[1]
        top = sorted(
            xs
        )[0]
        return lo, hi, longest, smallest, shortest, second, top
    """
    doc, tree = _doc(src)
    findings = performance.check(doc, tree)
    assert _lines(findings, "ORC-P106") == [1, 2, 3, 4, 5, 7]
    fixed = [_apply(doc.text, f.fix).splitlines()[f.line].strip() for f in findings if f.fix]
    assert fixed == [
        "lo = min(xs)",
        "hi = max(xs)",
        "longest = max(words, key=len)",
        "smallest = min(x * 2 for x in xs)",
        "shortest = min(words, key=lambda w: len(w))",
    ]
    assert findings[-1].fix is None  # spans several lines
    assert "default=" in (findings[0].suggestion or "")


def test_sorted_fix_after_unicode_on_same_line() -> None:
    src = 's = "héllo 😀 wörld"; best = sorted(xs)[0]  # ✓\n'
    doc = Document(path="u.py", text=src)
    (finding,) = performance.check(doc, ast.parse(src))
    assert finding.range.start.character == src.index("sorted")
    assert finding.range.end.character == src.index("  #")
    assert finding.fix is not None
    assert _apply(src, finding.fix) == 's = "héllo 😀 wörld"; best = min(xs)  # ✓\n'


def test_counting_lines_by_reading_whole_file() -> None:
    findings = _run(
        performance.check,
        """\
        from pathlib import Path


        def count(p, f, text):
            a = len(f.readlines())
            b = len(open(p).readlines())
            c = len(f.read().splitlines())
            d = f.read().count("\\n")
            e = len(Path(p).read_text().splitlines())
            g = len(text.splitlines())
            h = f.read().count("x")
            i = sum(1 for _ in f)
            return a, b, c, d, e, g, h, i
        """,
    )
    assert _lines(findings, "ORC-P107") == [4, 5, 6, 7, 8]
    assert all("sum(1 for _ in f)" in (f.suggestion or "") for f in findings)


def test_performance_clean_code_has_no_findings() -> None:
    findings = _run(
        performance.check,
        """\
        import re

        PATTERN = re.compile("x")
        LIST = [1, 2]


        def f(items, allowed, n):
            seen = set()
            total = 0
            parts = []
            for x in items:
                if x in seen:
                    pass
                if x in allowed:
                    pass
                seen.add(x)
                total += x
                items.pop()
                PATTERN.match(x)
                parts.append(str(x))

                def g(y):
                    return y in LIST

            while n:
                n -= 1
                sys.path.insert(0, str(n))
                parts[n] += "x"
            tokens = iter(items)
            for t in tokens:
                for u in tokens:
                    break
            for i in range(3):
                for j in range(3):
                    pass
            return "".join(parts), sorted(items)[:3], sorted(items)[1], n in LIST, re.compile("y")


        def shadowed(sorted, xs):
            return sorted(xs)[0]
        """,
    )
    assert findings == []


# -- refactoring --------------------------------------------------------------------------


def test_cyclomatic_complexity() -> None:
    findings = _run(
        refactoring.check,
        """\
        def simple(a):
            return a


        def branchy(a, b, c):
            if a and b:
                return 1
            elif c:
                return 2
            for x in a:
                while x:
                    x -= 1
            try:
                pass
            except ValueError:
                pass
            y = [i for i in a if i]
            z = 1 if b else 2
            assert c
            match a:
                case 1:
                    pass
                case _:
                    pass
            return y, z
        """,
    )
    (finding,) = findings
    assert finding.rule == "ORC-R101"
    assert finding.message == "function 'branchy' has cyclomatic complexity 13 (limit 10)"
    assert (finding.range.start.line, finding.range.start.character, finding.range.end.character) == (4, 4, 11)
    assert finding.severity is Severity.INFO
    _check_common(findings, AnalysisKind.REFACTORING, "orchestrator/refactoring")


def test_function_length_excludes_docstring() -> None:
    src = """\
    def short():
        \"\"\"A docstring
        over several
        lines.\"\"\"
        a = 1
        return a


    def long():
        a = 1
        b = 2
        c = 3
        return a + b + c
    """
    findings = _run(refactoring.check, src, max_function_lines=3)
    assert [(f.line, f.rule) for f in findings] == [(8, "ORC-R102")]
    assert findings[0].message == "function 'long' is 5 lines long (limit 3)"


def test_nesting_depth_counts_blocks_but_not_elif() -> None:
    findings = _run(
        refactoring.check,
        """\
        def chain(a):
            if a == 1:
                pass
            elif a == 2:
                pass
            elif a == 3:
                if a:
                    pass


        def deep(xs):
            for x in xs:
                with open(x) as f:
                    try:
                        if f:
                            pass
                    finally:
                        pass
        """,
        max_nesting=3,
    )
    assert [(f.line, f.rule) for f in findings] == [(10, "ORC-R103")]
    assert findings[0].message == "function 'deep' nests control blocks 4 deep (limit 3)"


def test_if_nested_under_else_is_deeper_than_elif() -> None:
    nested = """\
    def f(a):
        if a:
            pass
        else:
            if a > 1:
                pass
    """
    chained = """\
    def f(a):
        if a:
            pass
        elif a > 1:
            pass
    """
    findings = _run(refactoring.check, nested, max_nesting=1)
    assert [f.message for f in findings] == ["function 'f' nests control blocks 2 deep (limit 1)"]
    assert _run(refactoring.check, chained, max_nesting=1) == []


def test_parameter_count_and_qualified_names() -> None:
    findings = _run(
        refactoring.check,
        """\
        class Service:
            def ok(self, a, b, c, d, e):
                pass

            @staticmethod
            def static(a, b, c, d, e, f):
                pass

            @classmethod
            def build(cls, a, b, c, d, e):
                pass

            async def fetch(self, a, b, c, d, *args, **kwargs):
                def inner(p, q, r, s, t, u, v, w, x, y, z):
                    pass


        def plain(a, /, b, *, c, d, e, f):
            pass
        """,
    )
    assert [(f.line, f.rule) for f in findings] == [
        (5, "ORC-R104"),
        (12, "ORC-R104"),
        (13, "ORC-R104"),
        (17, "ORC-R104"),
    ]
    assert [f.message for f in findings] == [
        "method 'Service.static' takes 6 parameters (limit 5)",
        "method 'Service.fetch' takes 6 parameters (limit 5)",
        "function 'Service.fetch.inner' takes 11 parameters (limit 5)",
        "function 'plain' takes 6 parameters (limit 5)",
    ]
    assert findings[2].severity is Severity.WARNING  # twice the limit or more


def test_nested_function_complexity_is_its_own() -> None:
    findings = _run(
        refactoring.check,
        """\
        def outer(a):
            def inner(b):
                if b:
                    return 1
                if not b:
                    return 2
                return 3
            return inner(a) if a else None
        """,
        max_complexity=2,
    )
    assert [(f.line, f.message) for f in findings] == [
        (1, "function 'outer.inner' has cyclomatic complexity 3 (limit 2)")
    ]


# -- testing ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("test_mod.py", True),
        ("pkg/mod_test.py", True),
        ("tests/helpers.py", True),
        ("project/tests/unit/test_x.py", True),
        ("tests\\win.py", True),
        ("tests/conftest.py", False),
        ("conftest.py", False),
        ("pkg/mod.py", False),
        ("pkg/testing.py", False),
        ("tests/data.json", False),
        ("test_mod.txt", False),
    ],
)
def test_is_test_file(path: str, expected: bool) -> None:
    assert testing.is_test_file(path) is expected


def test_tests_without_assertions_and_with_sleeps() -> None:
    src = """\
    import time
    import asyncio
    from time import sleep as nap
    import pytest


    def test_ok():
        assert 1 + 1 == 2


    def test_nothing():
        compute()


    def test_raises():
        with pytest.raises(ValueError):
            int("x")


    class TestThing:
        def test_mock(self, mocker):
            m = mocker.Mock()
            m()
            m.assert_called_once()

        def test_empty(self):
            pass

        def helper(self):
            pass


    def test_sleeps():
        time.sleep(0.5)
        nap(1)
        time.sleep(0)
        assert True


    async def test_async_sleep():
        await asyncio.sleep(0.1)
        await asyncio.sleep(0)
        check_state()


    @pytest.mark.skip(reason="later")
    def test_skipped():
        pass


    def helper_not_a_test():
        time.sleep(1)


    def test_nested_fake():
        def slow():
            time.sleep(0.2)

        assert run(slow)


    class MyCase(unittest.TestCase):
        def test_a(self):
            self.assertEqual(1, 1)

        def test_b(self):
            do()
    """
    findings = _run(testing.check_tests, src, path="tests/test_mod.py")
    assert [(f.line, f.rule) for f in findings] == [
        (10, "ORC-T101"),
        (25, "ORC-T101"),
        (33, "ORC-T102"),
        (34, "ORC-T102"),
        (40, "ORC-T102"),
        (56, "ORC-T102"),
        (65, "ORC-T101"),
    ]
    by_line = {f.line: f for f in findings}
    assert by_line[10].message == "test 'test_nothing' has no assertion: it passes as long as nothing raises"
    assert (by_line[10].range.start.character, by_line[10].range.end.character) == (4, 16)
    assert by_line[56].severity is Severity.INFO  # inside a nested fake: often deliberate
    assert by_line[33].severity is Severity.WARNING
    assert "timeout" in (by_line[33].suggestion or "")
    _check_common(findings, AnalysisKind.TESTING, "orchestrator/testing", "tests/test_mod.py")


def _write(path: Path, text: str = "") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_find_test_files_in_project(tmp_path: Path) -> None:
    proj = tmp_path / "proj"
    _write(proj / "pyproject.toml")
    source = _write(proj / "src" / "pkg" / "mod.py")
    other = _write(proj / "pkg" / "mod_test.py")
    expected = [other, _write(proj / "tests" / "helpers.py"), _write(proj / "tests" / "test_mod.py")]
    for skipped in (
        "tests/conftest.py",
        ".venv/lib/test_x.py",
        "venv/test_x.py",
        "node_modules/test_y.py",
        "build/test_z.py",
        "dist/test_z.py",
        ".hidden/test_h.py",
        "src/pkg/__pycache__/test_c.py",
        "tests/data.json",
    ):
        _write(proj / skipped)
    found = testing.find_test_files([str(source), str(other), str(source)])
    assert found == sorted(str(p) for p in expected)


def test_find_test_files_without_root_marker(tmp_path: Path) -> None:
    ancestors = [tmp_path, *tmp_path.parents]
    if any((d / m).exists() for d in ancestors for m in ("pyproject.toml", "setup.py", "setup.cfg", ".git")):
        pytest.skip("a root marker above the temporary directory changes the project root")
    loose = tmp_path / "loose"
    source = _write(loose / "a.py")
    expected = [_write(loose / "sub" / "test_b.py"), _write(loose / "test_a.py")]
    _write(tmp_path / "test_outside.py")
    assert testing.find_test_files([str(source)]) == sorted(str(p) for p in expected)


_SOURCE = """\
import os


def parse(text):
    return text


def render(tree):
    return tree


def _private():
    pass


class Parser:
    def __init__(self):
        pass

    def feed(self, data):
        pass

    def close(self):
        pass

    @property
    def state(self):
        return 1


class Unused:
    def method(self):
        pass


async def fetch_all():
    pass
"""

_TEST = """\
from pkg.mod import parse, Parser


def test_parse():
    assert parse("x") == "x"


def test_parser():
    p = Parser()
    p.feed("data")
    assert p.state == 1
    assert "fetch_all" in dir(mod)
"""


def test_untested_public_code() -> None:
    source = _doc(_SOURCE, "pkg/mod.py")
    test = _doc(_TEST, "tests/test_mod.py")
    findings = testing.untested([source, test], [test])
    assert [(f.line, f.message) for f in findings] == [
        (7, "public function 'render' is not mentioned by any test"),
        (22, "public method 'Parser.close' is not mentioned by any test"),
        (30, "public class 'Unused' is not mentioned by any test"),
    ]
    assert {f.rule for f in findings} == {"ORC-T201"}
    assert all(f.severity is Severity.INFO for f in findings)
    assert (findings[0].range.start.character, findings[0].range.end.character) == (4, 10)
    assert (findings[2].range.start.character, findings[2].range.end.character) == (6, 12)
    _check_common(findings, AnalysisKind.TESTING, "orchestrator/testing")


def test_untested_without_any_tests_reports_once_per_file() -> None:
    source = _doc(_SOURCE, "pkg/mod.py")
    empty = _doc("import os\n_X = 1\n", "pkg/empty.py")
    findings = testing.untested([source, empty], [])
    assert [(f.path, f.line, f.rule, f.message) for f in findings] == [
        ("pkg/mod.py", 0, "ORC-T202", "no tests found for this project")
    ]


# -- syntax-heavy input and speed ---------------------------------------------------------


_HEAVY = """\
import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Outer:
    \"\"\"Ünïcödé docstring 😀\"\"\"

    class Inner:
        @staticmethod
        async def gather(items, a, b, c, d, e):
            async for item in items:
                async with item as ctx:
                    match ctx:
                        case {"kind": "x", **rest}:
                            pass
                        case [first, *others]:
                            pass
                        case Point(x=0) | None:
                            pass
                        case _:
                            pass
            return [x async for x in items]


def ünïcode_name(xs):
    label = "😀 naïve"; best = sorted(xs)[0]
    for x in xs:
        if x in ["é", "😀"]:
            label += "✓"
    return label, best
"""


def test_syntax_heavy_file() -> None:
    doc, tree = _doc(_HEAVY, "pkg/heavy.py")
    lines = doc.text.split("\n")

    perf = performance.check(doc, tree)
    assert [(f.line, f.rule) for f in perf] == [(26, "ORC-P106"), (28, "ORC-P101"), (29, "ORC-P102")]
    assert perf[0].range.start.character == lines[26].index("sorted")
    assert perf[1].range.start.character == lines[28].index("x in")
    assert perf[1].range.end.character == len(lines[28]) - 1  # up to the colon
    assert perf[0].fix is not None
    assert _apply(doc.text, perf[0].fix).split("\n")[26] == '    label = "😀 naïve"; best = min(xs)'

    refac = refactoring.check(doc, tree, max_complexity=2)
    assert [(f.line, f.rule, f.message) for f in refac] == [
        (10, "ORC-R101", "method 'Outer.Inner.gather' has cyclomatic complexity 7 (limit 2)"),
        (10, "ORC-R104", "method 'Outer.Inner.gather' takes 6 parameters (limit 5)"),
        (25, "ORC-R101", "function 'ünïcode_name' has cyclomatic complexity 3 (limit 2)"),
    ]
    name = refac[2].range
    assert (name.start.character, name.end.character) == (4, 4 + len("ünïcode_name"))

    assert testing.check_tests(doc, tree) == []
    (unmentioned,) = testing.untested([(doc, tree)], [_doc("def test_x():\n    Outer.Inner.gather\n", "test_h.py")])
    assert unmentioned.message == "public function 'ünïcode_name' is not mentioned by any test"


def test_lines_converts_utf8_columns() -> None:
    text = "a = 'é😀'; b\r\nc\rd"
    lines = Lines(text)
    col = len("a = 'é😀'; ".encode())
    assert lines.char(1, col) == len("a = 'é😀'; ")
    assert lines.line(2) == "c" and lines.line(3) == "d" and lines.line(9) == ""


def test_analyzers_are_fast_on_a_thousand_lines() -> None:
    block = textwrap.dedent(
        """\
        def handler_{n}(items, names, text):
            out = ""
            for x in items:
                if x in names and x not in ("a", "b"):
                    out += str(x)
                elif x is None:
                    continue
                else:
                    out = out.strip()
            best = sorted(items)[0] if items else None
            return {{k: v for k, v in enumerate(items) if v}}, out, best, len(text)

        """
    )
    text = "".join(block.format(n=n) for n in range(84))
    assert 1000 <= text.count("\n") <= 1100
    doc, tree = Document(path="big.py", text=text), ast.parse(text)
    # Speed is measured in benchmarks/analyze.py; here: a big file goes through every check.
    assert performance.check(doc, tree)
    assert refactoring.check(doc, tree) is not None
    testing.untested([(doc, tree)], [(doc, tree)])
    testing.check_tests(doc, tree)


def test_paths_are_native(tmp_path: Path) -> None:
    _write(tmp_path / "setup.cfg")
    source = _write(tmp_path / "m.py")
    test = _write(tmp_path / "tests" / "test_m.py")
    assert testing.find_test_files([str(source)]) == [os.path.join(str(tmp_path), "tests", "test_m.py")]
    assert test.exists()
