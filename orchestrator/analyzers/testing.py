"""Test-suite checks: assertion-free tests, sleeping tests, and untested public code.

Rules (stable ids):

    ORC-T101  test with no assertion                          warning
    ORC-T102  test sleeps (time/asyncio/anyio/trio.sleep > 0)  warning (info inside a nested helper)
    ORC-T201  public function/class/method no test mentions    info
    ORC-T202  no test files found for the project              info, once per source file

Tests are what pytest collects by default: functions whose name starts with `test` at
module level, and methods starting with `test` in classes named `Test*` (nested ones
too) or in `unittest.TestCase` subclasses. A test "asserts" when it contains an
`assert`, a `raise`, a `pytest.raises/warns/deprecated_call/fail` call or context, any
call of a method starting with `assert` (`self.assertEqual`, `mock.assert_called_once`,
`np.testing.assert_allclose`), `self.fail`, or a call of a function named
`assert*`/`check_*`/`verify_*`/`expect*`. Tests marked skip/xfail, tests that call
`pytest.skip`/`xfail`/`importorskip`, and tests taking the `benchmark` fixture are
not flagged.

`untested` is a mention check, not coverage: a public module-level function or class,
or a public method (not a dunder; properties included: they are mentioned as
attributes) of a public class, is "tested" when its name appears in some test file
as a name, an attribute, an imported name, or an identifier inside a string. A class
that no test mentions is reported once, not with each of its methods. Methods called
only by a framework (`visit_*`, `do_GET`) will be reported; `@overload` stubs and
`conftest.py` are skipped. With no test file at all, each source file with public
code gets one ORC-T202 finding at line 0 instead of one per definition.
"""

from __future__ import annotations

import ast
import os
import re
from collections.abc import Iterable, Iterator, Sequence
from pathlib import PurePosixPath

from orchestrator.analyzers._ast_util import Lines, call_name, dotted_name
from orchestrator.analyzers.paths import is_test_file
from orchestrator.types import AnalysisKind, Document, Finding, Range, Severity

SOURCE = "orchestrator/testing"

_ROOT_MARKERS = ("pyproject.toml", "setup.py", "setup.cfg", ".git")
_SKIP_DIRS = frozenset({".git", ".venv", "venv", "node_modules", "__pycache__", "build", "dist", "site-packages"})
_SLEEP_MODULES = frozenset({"time", "asyncio", "anyio", "trio"})
_ASSERT_CALLS = frozenset(
    {"pytest.raises", "pytest.warns", "pytest.deprecated_call", "pytest.fail", "raises", "warns", "fail"}
)
_EXEMPT_CALLS = frozenset({"pytest.skip", "pytest.xfail", "pytest.importorskip", "skip", "xfail", "importorskip"})
_EXEMPT_MARKS = frozenset({"skip", "xfail", "expectedFailure"})
_HELPER_PREFIXES = ("assert", "check_", "verify_", "expect")
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_SLEEP_SUGGESTION = (
    "wait for the condition itself with a timeout instead of a fixed delay: threading.Event.wait(timeout=...), "
    "asyncio.wait_for(...)/asyncio.Event, or poll the condition against a deadline; "
    "for time-dependent code, inject or mock the clock"
)


def _finding(doc: Document, rng: Range, rule: str, severity: Severity, message: str, suggestion: str) -> Finding:
    return Finding(
        kind=AnalysisKind.TESTING,
        severity=severity,
        range=rng,
        message=message,
        rule=rule,
        source=SOURCE,
        suggestion=suggestion,
        path=doc.path,
    )


# -- test functions -------------------------------------------------------------------


def _is_test_class(node: ast.ClassDef) -> bool:
    return node.name.startswith("Test") or any((dotted_name(base) or "").endswith("TestCase") for base in node.bases)


def _test_functions(body: list[ast.stmt], in_class: bool = False) -> Iterator[ast.FunctionDef | ast.AsyncFunctionDef]:
    for node in body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name.startswith("test"):
            yield node
        elif isinstance(node, ast.ClassDef) and _is_test_class(node):
            yield from _test_functions(node.body, True)


def _marks(node: ast.FunctionDef | ast.AsyncFunctionDef) -> set[str]:
    """Last components of decorator names: `pytest.mark.skip(...)` -> "skip"."""
    names = set()
    for decorator in node.decorator_list:
        target = decorator.func if isinstance(decorator, ast.Call) else decorator
        name = dotted_name(target)
        if name:
            names.add(name.rsplit(".", 1)[-1])
    return names


def _sleep_imports(tree: ast.Module) -> tuple[dict[str, str], dict[str, str]]:
    """Local names of the sleep modules, and of `sleep` functions imported from them."""
    modules = {name: name for name in _SLEEP_MODULES}
    functions: dict[str, str] = {}
    for node in tree.body:
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name in _SLEEP_MODULES:
                    modules[alias.asname or alias.name] = alias.name
        elif isinstance(node, ast.ImportFrom) and node.module in _SLEEP_MODULES:
            for alias in node.names:
                if alias.name == "sleep":
                    functions[alias.asname or "sleep"] = f"{node.module}.sleep"
    return modules, functions


def _sleep_name(call: ast.Call, modules: dict[str, str], functions: dict[str, str]) -> str | None:
    func = call.func
    if isinstance(func, ast.Attribute) and func.attr == "sleep" and isinstance(func.value, ast.Name):
        module = modules.get(func.value.id)
        return f"{module}.sleep" if module else None
    if isinstance(func, ast.Name):
        return functions.get(func.id)
    return None


def _zero(node: ast.AST | None) -> bool:
    return isinstance(node, ast.Constant) and not isinstance(node.value, str) and node.value == 0


def _asserts(node: ast.AST) -> bool:
    if isinstance(node, (ast.Assert, ast.Raise)):
        return True
    if not isinstance(node, ast.Call):
        return False
    name = call_name(node) or ""
    if name in _ASSERT_CALLS or name in _EXEMPT_CALLS or name == "self.fail":
        return True
    func = node.func
    if isinstance(func, ast.Attribute):
        return func.attr.startswith("assert")
    return isinstance(func, ast.Name) and func.id.startswith(_HELPER_PREFIXES)


def _walk(node: ast.AST) -> Iterator[tuple[ast.AST, bool]]:
    """Every node below `node` (in no particular order), with whether it sits inside a
    nested function. Iterative: deep expressions must not exhaust the recursion limit."""
    stack: list[tuple[ast.AST, bool]] = [(child, False) for child in ast.iter_child_nodes(node)]
    while stack:
        item, nested = stack.pop()
        yield item, nested
        inner = nested or isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
        stack.extend((child, inner) for child in ast.iter_child_nodes(item))


def check_tests(doc: Document, tree: ast.Module) -> list[Finding]:
    """ORC-T101/T102 findings for the tests of test file `doc` (parsed as `tree`)."""
    lines = Lines(doc.text)
    modules, functions = _sleep_imports(tree)
    findings: list[Finding] = []
    for test in _test_functions(tree.body):
        marks = _marks(test)
        asserts = bool(marks & _EXEMPT_MARKS) or any(a.arg == "benchmark" for a in test.args.args)
        for node, nested in _walk(test):
            if not asserts and _asserts(node):
                asserts = True
            if not isinstance(node, ast.Call):
                continue
            sleep = _sleep_name(node, modules, functions)
            delay = node.args[0] if node.args else next((k.value for k in node.keywords), None)
            if sleep is None or delay is None or _zero(delay):
                continue
            amount = lines.segment(delay) or "..."
            findings.append(
                _finding(
                    doc,
                    lines.node_range(node),
                    "ORC-T102",
                    Severity.INFO if nested else Severity.WARNING,
                    f"test '{test.name}' sleeps {amount} s ({sleep}): slow, and flaky when the machine is busy",
                    _SLEEP_SUGGESTION,
                )
            )
        if not asserts:
            findings.append(
                _finding(
                    doc,
                    lines.name_range(test),
                    "ORC-T101",
                    Severity.WARNING,
                    f"test '{test.name}' has no assertion: it passes as long as nothing raises",
                    "assert on the result or on the side effect the test is about (or use pytest.raises for errors)",
                )
            )
    return sorted(findings, key=lambda f: (f.range.start.line, f.range.start.character, f.rule))


# -- finding test files ---------------------------------------------------------------


def _project_root(path: str) -> str:
    start = os.path.abspath(path)
    directory = start if os.path.isdir(start) else os.path.dirname(start)
    current = directory
    while True:
        if any(os.path.exists(os.path.join(current, marker)) for marker in _ROOT_MARKERS):
            return current
        parent = os.path.dirname(current)
        if parent == current:
            return directory
        current = parent


def find_test_files(paths: Iterable[str]) -> list[str]:
    """Absolute paths of every test file in the projects the given source files belong to.

    A project root is the nearest ancestor holding pyproject.toml, setup.py, setup.cfg
    or .git (else the file's own directory). `tests/` is judged relative to the root,
    so a project that itself lives under some `tests` directory is not all tests.
    """
    roots = {_project_root(path) for path in paths}
    found: set[str] = set()
    for root in roots:
        for directory, dirs, files in os.walk(root):
            dirs[:] = [d for d in dirs if d not in _SKIP_DIRS and not d.startswith(".") and not d.endswith(".egg-info")]
            relative = os.path.relpath(directory, root)
            for name in files:
                if is_test_file(os.path.join(relative, name)):
                    found.add(os.path.join(directory, name))
    return sorted(found)


# -- untested public code -------------------------------------------------------------


def _mentions(tests: Sequence[tuple[Document, ast.Module]]) -> set[str]:
    names: set[str] = set()
    for _, tree in tests:
        for node in ast.walk(tree):
            if isinstance(node, ast.Name):
                names.add(node.id)
            elif isinstance(node, ast.Attribute):
                names.add(node.attr)
            elif isinstance(node, ast.alias):
                names.update(node.name.split("."))
                if node.asname:
                    names.add(node.asname)
            elif isinstance(node, ast.ImportFrom) and node.module:
                names.update(node.module.split("."))
            elif isinstance(node, ast.Constant) and isinstance(node.value, str):
                names.update(_IDENTIFIER.findall(node.value))
    return names


def _public(node: ast.AST) -> bool:
    return (
        isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
        and not node.name.startswith("_")
        and not any((dotted_name(d) or "").endswith("overload") for d in node.decorator_list)
    )


def _definitions(body: list[ast.stmt]) -> Iterator[ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef]:
    """Module-level definitions, including those under module-level if/try (not TYPE_CHECKING)."""
    for node in body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            yield node
        elif isinstance(node, ast.If) and "TYPE_CHECKING" not in (dotted_name(node.test) or ""):
            yield from _definitions(node.body)
            yield from _definitions(node.orelse)
        elif isinstance(node, (ast.Try, ast.TryStar)):
            for block in (node.body, *(h.body for h in node.handlers), node.orelse, node.finalbody):
                yield from _definitions(block)


def untested(
    sources: Sequence[tuple[Document, ast.Module]], tests: Sequence[tuple[Document, ast.Module]]
) -> list[Finding]:
    """ORC-T201/T202 findings for public code in `sources` that no file in `tests` mentions."""
    mentioned = _mentions(tests)
    findings: list[Finding] = []
    for doc, tree in sources:
        if is_test_file(doc.path) or PurePosixPath(doc.path.replace("\\", "/")).name == "conftest.py":
            continue
        lines = Lines(doc.text)
        stem = PurePosixPath(doc.path.replace("\\", "/")).stem
        missing: list[tuple[ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef, str]] = []
        seen: set[str] = set()
        for node in _definitions(tree.body):
            if not _public(node) or node.name in seen:
                continue
            seen.add(node.name)
            if isinstance(node, ast.ClassDef):
                if node.name not in mentioned:
                    missing.append((node, f"class '{node.name}'"))
                    continue
                methods = {m.name: m for m in _definitions(node.body) if not isinstance(m, ast.ClassDef) and _public(m)}
                missing += [(m, f"method '{node.name}.{m.name}'") for m in methods.values() if m.name not in mentioned]
            elif node.name not in mentioned:
                missing.append((node, f"function '{node.name}'"))
        if not tests and seen:
            findings.append(
                _finding(
                    doc,
                    Range.lines(0),
                    "ORC-T202",
                    Severity.INFO,
                    "no tests found for this project",
                    f"add a tests/ directory with test_{stem}.py that exercises the public functions of this module",
                )
            )
            continue
        for node, what in missing:
            findings.append(
                _finding(
                    doc,
                    lines.name_range(node),
                    "ORC-T201",
                    Severity.INFO,
                    f"public {what} is not mentioned by any test",
                    f"add a test that exercises {node.name} (e.g. in tests/test_{stem}.py)",
                )
            )
    return sorted(findings, key=lambda f: (f.path, f.range.start.line, f.range.start.character, f.rule))
