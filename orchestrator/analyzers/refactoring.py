"""Refactoring hints per function and method: complexity, length, nesting, parameters.

Rules (stable ids), each reported on the function's name:

    ORC-R101  cyclomatic complexity above `max_complexity`
    ORC-R102  longer than `max_function_lines` lines
    ORC-R103  control blocks nested deeper than `max_nesting`
    ORC-R104  more than `max_params` parameters

Severity is info, or warning once the value reaches twice the limit.

Measures:
  * complexity (McCabe): 1, plus 1 for each `if`/`elif`, `for`/`async for`, `while`,
    `except` handler, conditional expression, `case`, `assert`, comprehension `for`
    and comprehension `if`, plus (operands - 1) for each `and`/`or` chain. Nested
    functions are measured on their own; lambdas count toward their enclosing function.
  * length: from the `def` line (decorators excluded) to the last line, minus the
    docstring, so documenting a function never pushes it over the limit.
  * nesting: depth of `if`/`for`/`while`/`with`/`try`/`match` blocks in the body; an
    `elif` stays at the depth of its `if`, as it reads.
  * parameters: positional-only + positional + keyword-only, `*args` and `**kwargs`
    one each; `self`/`cls` (the first parameter of a method that is not a
    staticmethod) is not counted.
"""

from __future__ import annotations

import ast
from collections.abc import Callable
from typing import Any

from orchestrator.analyzers._ast_util import Lines, docstring_lines, dotted_name
from orchestrator.types import AnalysisKind, Document, Finding, Severity

SOURCE = "orchestrator/refactoring"

_PLUS_ONE = frozenset({ast.IfExp, ast.Assert})
_SUGGESTIONS = {
    "ORC-R101": "split it into smaller functions; replace long if/elif chains with a dict of handlers, "
    "and use early returns for special cases",
    "ORC-R102": "extract cohesive steps into well-named helper functions",
    "ORC-R103": "flatten it with guard clauses (return/continue early) and move inner blocks into helpers",
    "ORC-R104": "group related parameters into a dataclass or settings object, or split the function by purpose",
}


class _Frame:
    __slots__ = ("complexity", "depth")

    def __init__(self) -> None:
        self.complexity = 1
        self.depth = 0


class _Walker:
    def __init__(self, doc: Document, limits: dict[str, int]) -> None:
        self.doc = doc
        self.lines = Lines(doc.text)
        self.limits = limits
        self.frame: _Frame | None = None  # the innermost function being measured
        self.names: list[str] = []  # enclosing class/function names, for qualified names
        self.in_class = False  # directly in a class body: a def there is a method
        self.findings: list[Finding] = []

    def block(self, stmts: list[ast.stmt], depth: int) -> None:
        if stmts and self.frame is not None and depth > self.frame.depth:
            self.frame.depth = depth
        for stmt in stmts:
            self.visit(stmt, depth)

    def bump(self, amount: int = 1) -> None:
        if self.frame is not None:
            self.frame.complexity += amount

    def visit(self, node: ast.AST, depth: int) -> None:
        handler = _HANDLERS.get(type(node))
        if handler is not None:
            handler(self, node, depth)
        else:
            self.simple(node)

    def simple(self, node: ast.AST) -> None:
        """A simple statement or an expression: no blocks or defs in it (lambdas count
        toward the enclosing function), so only complexity matters, counted iteratively."""
        frame = self.frame
        if frame is None:
            return
        total = 0
        stack = [node]
        while stack:
            item = stack.pop()
            cls = type(item)
            if cls is ast.BoolOp:
                total += len(item.values) - 1  # type: ignore[attr-defined]
            elif cls is ast.comprehension:
                total += 1 + len(item.ifs)  # type: ignore[attr-defined]
            elif cls in _PLUS_ONE:
                total += 1
            stack.extend(ast.iter_child_nodes(item))
        frame.complexity += total

    def if_stmt(self, node: ast.If, depth: int) -> None:
        self.bump()
        self.simple(node.test)
        self.block(node.body, depth + 1)
        orelse = node.orelse
        # `elif` parses as an `if` alone in `else`, at the column of the first `if`;
        # an `if` nested under `else:` is indented further.
        if len(orelse) == 1 and isinstance(orelse[0], ast.If) and orelse[0].col_offset == node.col_offset:
            self.if_stmt(orelse[0], depth)
        else:
            self.block(orelse, depth + 1)

    def loop(self, node: ast.For | ast.AsyncFor | ast.While, depth: int) -> None:
        self.bump()
        if isinstance(node, ast.While):
            self.simple(node.test)
        else:
            self.simple(node.target)
            self.simple(node.iter)
        self.block(node.body, depth + 1)
        self.block(node.orelse, depth + 1)

    def with_stmt(self, node: ast.With | ast.AsyncWith, depth: int) -> None:
        for item in node.items:
            self.simple(item)
        self.block(node.body, depth + 1)

    def try_stmt(self, node: ast.Try | ast.TryStar, depth: int) -> None:
        self.block(node.body, depth + 1)
        for handler in node.handlers:
            self.bump()
            if handler.type is not None:
                self.simple(handler.type)
            self.block(handler.body, depth + 1)
        self.block(node.orelse, depth + 1)
        self.block(node.finalbody, depth + 1)

    def match_stmt(self, node: ast.Match, depth: int) -> None:
        self.simple(node.subject)
        for case in node.cases:
            self.bump()
            if case.guard is not None:
                self.simple(case.guard)
            self.block(case.body, depth + 1)

    def class_def(self, node: ast.ClassDef, depth: int) -> None:
        for expr in (*node.decorator_list, *node.bases, *(kw.value for kw in node.keywords)):
            self.simple(expr)
        saved = self.in_class
        self.names.append(node.name)
        self.in_class = True
        self.block(node.body, depth)
        self.in_class = saved
        self.names.pop()

    def function(self, node: ast.FunctionDef | ast.AsyncFunctionDef, depth: int = 0) -> None:
        # Decorators and defaults run in the enclosing scope, and count there.
        args = node.args
        for expr in (*node.decorator_list, *args.defaults, *(d for d in args.kw_defaults if d is not None)):
            self.simple(expr)
        is_method = self.in_class
        qualname = ".".join((*self.names, node.name))
        frame = _Frame()
        saved = self.frame, self.in_class
        self.frame, self.in_class = frame, False
        self.names.append(node.name)
        self.block(node.body, 0)
        self.names.pop()
        self.frame, self.in_class = saved
        self.report(node, qualname, is_method, frame)

    def report(
        self, node: ast.FunctionDef | ast.AsyncFunctionDef, qualname: str, is_method: bool, frame: _Frame
    ) -> None:
        args = node.args
        positional = len(args.posonlyargs) + len(args.args)
        params = positional + len(args.kwonlyargs) + (args.vararg is not None) + (args.kwarg is not None)
        if is_method and positional and not any(dotted_name(d) == "staticmethod" for d in node.decorator_list):
            params -= 1
        length = (node.end_lineno or node.lineno) - node.lineno + 1 - docstring_lines(node)
        what = f"{'method' if is_method else 'function'} '{qualname}'"
        limits = self.limits
        measures = (
            (
                "ORC-R101",
                frame.complexity,
                limits["complexity"],
                f"{what} has cyclomatic complexity {frame.complexity}",
            ),
            ("ORC-R102", length, limits["lines"], f"{what} is {length} lines long"),
            ("ORC-R103", frame.depth, limits["nesting"], f"{what} nests control blocks {frame.depth} deep"),
            ("ORC-R104", params, limits["params"], f"{what} takes {params} parameters"),
        )
        for rule, value, limit, message in measures:
            if value <= limit:
                continue
            self.findings.append(
                Finding(
                    kind=AnalysisKind.REFACTORING,
                    severity=Severity.WARNING if value >= 2 * limit else Severity.INFO,
                    range=self.lines.name_range(node),
                    message=f"{message} (limit {limit})",
                    rule=rule,
                    source=SOURCE,
                    suggestion=_SUGGESTIONS[rule],
                    path=self.doc.path,
                )
            )


_HANDLERS: dict[type[ast.AST], Callable[[_Walker, Any, int], None]] = {
    ast.FunctionDef: _Walker.function,
    ast.AsyncFunctionDef: _Walker.function,
    ast.ClassDef: _Walker.class_def,
    ast.If: _Walker.if_stmt,
    ast.For: _Walker.loop,
    ast.AsyncFor: _Walker.loop,
    ast.While: _Walker.loop,
    ast.With: _Walker.with_stmt,
    ast.AsyncWith: _Walker.with_stmt,
    ast.Try: _Walker.try_stmt,
    ast.TryStar: _Walker.try_stmt,
    ast.Match: _Walker.match_stmt,
}


def check(
    doc: Document,
    tree: ast.Module,
    *,
    max_complexity: int = 10,
    max_function_lines: int = 50,
    max_nesting: int = 4,
    max_params: int = 5,
) -> list[Finding]:
    """Refactoring findings for every function and method of `doc` (parsed as `tree`)."""
    limits = {"complexity": max_complexity, "lines": max_function_lines, "nesting": max_nesting, "params": max_params}
    walker = _Walker(doc, limits)
    try:
        walker.block(tree.body, 0)
    except RecursionError:
        pass  # pathologically deep expressions: report what was measured so far
    return sorted(walker.findings, key=lambda f: (f.range.start.line, f.range.start.character, f.rule))
