"""Performance checks over a parsed module: one ast walk, stdlib only.

Rules (stable ids):

    ORC-P101  `x in L` / `not in` against a list inside a loop     warning (info: list literal)
    ORC-P102  string built with `+=` inside a loop                  warning
    ORC-P103  `L.pop(0)` / `L.insert(0, v)` inside a loop           warning (info: receiver type unknown)
    ORC-P104  `re.compile(...)` inside a loop                       warning (info: pattern not a constant)
              (not flagged when the pattern uses names bound inside the loop)
    ORC-P105  nested loops over the same collection (O(n^2))        info
    ORC-P106  `sorted(x)[0]` / `sorted(x)[-1]` instead of min/max   warning, with a fix
    ORC-P107  whole file read only to count its lines               info

"Inside a loop" means in the body of a `for`/`async for`/`while` (or the condition of
a `while`) or in a comprehension, within the same function: a function or lambda
defined in a loop starts afresh. P106 and P107 apply anywhere.

Names are resolved the way Python does (function scopes, then the module; class
bodies are not seen from their methods), with every binding of the name in that scope
taken into account, so `L = []` later rebound to a set is not flagged. Checks that need
that resolution are recorded during the walk and decided at its end.
"""

from __future__ import annotations

import ast
from collections.abc import Callable

from orchestrator.analyzers._ast_util import CONTAINERS, Lines, Scope, ScopedWalker, call_name, dotted_name, is_str_expr
from orchestrator.types import AnalysisKind, Document, Finding, Fix, Range, Severity, TextEdit

SOURCE = "orchestrator/performance"


def _collection_key(node: ast.AST) -> str | None:
    """A comparable key for what a loop iterates when it is plainly a collection.

    Calls are excluded (except `.items()`/`.keys()`/`.values()` and `enumerate`):
    `range(n)` twice is an index grid, and two calls may return different things.
    """
    inner = node
    if isinstance(inner, ast.Call) and not inner.keywords:
        if isinstance(inner.func, ast.Attribute) and inner.func.attr in ("items", "keys", "values") and not inner.args:
            inner = inner.func.value
        elif call_name(inner) == "enumerate" and len(inner.args) == 1:
            inner = inner.args[0]
    while isinstance(inner, ast.Subscript) and isinstance(inner.slice, ast.Constant):
        inner = inner.value
    return ast.dump(node) if dotted_name(inner) is not None else None


def _index(node: ast.AST) -> int | None:
    """0 or -1 for `[0]` / `[-1]` subscripts, else None."""
    if isinstance(node, ast.Constant) and type(node.value) is int and node.value in (0, -1):
        return node.value
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub) and isinstance(node.operand, ast.Constant):
        return -1 if type(node.operand.value) is int and node.operand.value == 1 else None
    return None


def _reads_whole(node: ast.AST) -> bool:
    """`x.read()` or `x.read_text()` with no size argument."""
    return (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr in ("read", "read_text")
        and not node.args
        and all(kw.arg == "encoding" for kw in node.keywords)
    )


def _receiver(node: ast.AST, method: str) -> ast.expr | None:
    """`x` for a call `x.<method>()` without arguments, else None."""
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == method:
        return None if node.args or node.keywords else node.func.value
    return None


class _Walker(ScopedWalker):
    def __init__(self, doc: Document) -> None:
        super().__init__()
        self.doc = doc
        self.lines = Lines(doc.text)
        self.keys: dict[int, str | None] = {}  # collection key of each iterable met, by id
        self.pending: list[Callable[[], None]] = []  # checks decided once every binding is known
        self.findings: list[Finding] = []

    def add(
        self,
        where: ast.AST | Range,
        rule: str,
        severity: Severity,
        message: str,
        suggestion: str,
        fix: Fix | None = None,
    ) -> None:
        rng = where if isinstance(where, Range) else self.lines.node_range(where)
        self.findings.append(
            Finding(
                kind=AnalysisKind.PERFORMANCE,
                severity=severity,
                range=rng,
                message=message,
                rule=rule,
                source=SOURCE,
                suggestion=suggestion,
                fix=fix,
                path=self.doc.path,
            )
        )

    def on_iteration(self, start: ast.AST, iterable: ast.expr) -> None:
        key = self.keys[id(iterable)] = _collection_key(iterable)
        if key is None or not any(self.keys.get(id(outer)) == key for outer in self.iters):
            return
        scope, rng = self.scope, self.lines.header_range(start, iterable)

        def resolve() -> None:
            if isinstance(iterable, ast.Name) and any(k == "iterator" for k, _ in scope.lookup(iterable.id) or []):
                return  # nested loops sharing one iterator consume it together: that is O(n)
            self.add(
                rng,
                "ORC-P105",
                Severity.INFO,
                f"nested loop over '{self.lines.segment(iterable) or 'the same collection'}' inside a loop over the "
                "same collection is O(n^2)",
                "if you are looking for matches or duplicates, index the items once in a dict or set (O(n)); "
                "if every pair is really needed, itertools.combinations()/product() make that explicit",
            )

        self.pending.append(resolve)

    def visit_AugAssign(self, node: ast.AugAssign) -> None:
        self.visit(node.value)
        if not isinstance(node.target, ast.Name):
            self.visit(node.target)
        if not self.loops or not isinstance(node.op, ast.Add):
            return
        scope, loop, target, value = self.scope, self.loops[-1], node.target, node.value
        value_is_str = is_str_expr(value)

        def resolve() -> None:
            if isinstance(target, ast.Name):
                bindings = scope.lookup(target.id) or []
                kinds = {kind for kind, _ in bindings}
                if any(loop in stack for _, stack in bindings):
                    return  # reset on every iteration: the string does not keep growing
                if kinds & CONTAINERS or not (value_is_str or kinds == {"str"}):
                    return
                name = target.id
            elif value_is_str and isinstance(target, ast.Attribute):
                # Not subscripts: `parts[i] += "x"` usually touches a different item each time.
                name = self.lines.segment(target) or "target"
            else:
                return
            self.add(
                node,
                "ORC-P102",
                Severity.WARNING,
                f"string '{name}' is built with += inside a loop; each += may copy the whole string (quadratic)",
                'append the pieces to a list and "".join() it once after the loop (or write to io.StringIO)',
            )

        self.pending.append(resolve)

    def visit_Compare(self, node: ast.Compare) -> None:
        self.children(node)
        if not self.loops:
            return
        for op, right in zip(node.ops, node.comparators):
            if not isinstance(op, (ast.In, ast.NotIn)):
                continue
            if isinstance(right, ast.List):
                self.add(
                    node,
                    "ORC-P101",
                    Severity.INFO,
                    "membership test against a list literal inside a loop scans it linearly",
                    "use a set literal {...} instead: CPython builds a constant set once, and lookups are O(1)",
                )
            elif isinstance(right, ast.ListComp):
                self.add(
                    node,
                    "ORC-P101",
                    Severity.WARNING,
                    "membership test against a list comprehension inside a loop builds and scans a list every time",
                    "build a set once before the loop and test against it",
                )
            elif isinstance(right, ast.Name):
                self.pending.append(self._membership(node, right.id, self.scope, self.loops[-1]))

    def _membership(self, node: ast.Compare, name: str, scope: Scope, loop: int) -> Callable[[], None]:
        def resolve() -> None:
            bindings = scope.lookup(name)
            if not bindings or any(kind != "list" for kind, _ in bindings):
                return
            if any(loop in stack for _, stack in bindings):
                return  # rebuilt on every iteration: a set would not be cheaper
            self.add(
                node,
                "ORC-P101",
                Severity.WARNING,
                f"membership test against list '{name}' inside a loop is O(n) per test",
                f"build a set once before the loop (e.g. `{name}_set = set({name})`) and test against it: "
                "set lookups are O(1)",
            )

        return resolve

    def visit_Call(self, node: ast.Call) -> None:
        self.children(node)
        self.count_lines(node)
        if not self.loops:
            return
        func = node.func
        if isinstance(func, ast.Attribute):
            if dotted_name(func.value) == "sys.path":
                pass  # short, and nothing else takes its place
            elif func.attr == "pop" and len(node.args) == 1 and not node.keywords and _index(node.args[0]) == 0:
                self.pending.append(self._front_op(node, func.value, "pop(0)", self.scope))
            elif func.attr == "insert" and len(node.args) == 2 and _index(node.args[0]) == 0:
                self.pending.append(self._front_op(node, func.value, "insert(0, ...)", self.scope))
            elif func.attr == "compile" and isinstance(func.value, ast.Name):
                self.pending.append(self._re_compile(node, "re", func.value.id))
        elif isinstance(func, ast.Name):
            self.pending.append(self._re_compile(node, "re.compile", func.id))

    def _front_op(self, node: ast.Call, receiver: ast.AST, op: str, scope: Scope) -> Callable[[], None]:
        def resolve() -> None:
            severity = Severity.INFO
            if isinstance(receiver, ast.Name):
                kinds = {kind for kind, _ in scope.lookup(receiver.id) or []}
                if kinds & (CONTAINERS - {"list"}) or "str" in kinds:
                    return  # dict.pop(0) is a key lookup; deques have popleft
                if kinds == {"list"}:
                    severity = Severity.WARNING
            name = self.lines.segment(receiver) or "list"
            self.add(
                node,
                "ORC-P103",
                severity,
                f"'{name}.{op}' inside a loop shifts every element of a list (O(n) per call)",
                "use collections.deque and popleft()/appendleft(), which are O(1) at both ends",
            )

        return resolve

    def _re_compile(self, node: ast.Call, imported: str, local: str) -> Callable[[], None]:
        scope, loops = self.scope, set(self.loops)

        def resolve() -> None:
            if self.imports.get(local) != imported:
                return
            pattern = node.args[0] if node.args else next((k.value for k in node.keywords if k.arg == "pattern"), None)
            if isinstance(pattern, ast.Constant):
                severity, message = Severity.WARNING, "re.compile() of a constant pattern inside a loop"
            else:
                # A pattern built from the loop's own variables cannot be hoisted: that
                # is compiling a list of patterns, done right.
                names = {n.id for n in ast.walk(pattern) if isinstance(n, ast.Name)} if pattern else set()
                if any(loops.intersection(stack) for name in names for _, stack in scope.lookup(name) or []):
                    return
                severity, message = Severity.INFO, "re.compile() inside a loop of a pattern that does not change in it"
            self.add(
                node,
                "ORC-P104",
                severity,
                f"{message}: it is looked up in re's cache (or recompiled) on every iteration",
                "compile it once, before the loop or at module level (`_PATTERN = re.compile(...)`), "
                "and use the compiled pattern in the loop",
            )

        return resolve

    def count_lines(self, node: ast.Call) -> None:
        name = call_name(node)
        hit = False
        if name == "len" and len(node.args) == 1 and not node.keywords:
            arg = node.args[0]
            split = _receiver(arg, "splitlines")
            hit = _receiver(arg, "readlines") is not None or (split is not None and _reads_whole(split))
        elif isinstance(node.func, ast.Attribute) and node.func.attr == "count" and len(node.args) == 1:
            arg = node.args[0]
            hit = isinstance(arg, ast.Constant) and arg.value == "\n" and _reads_whole(node.func.value)
        if hit:
            self.add(
                node,
                "ORC-P107",
                Severity.INFO,
                "the whole file is read into memory just to count its lines",
                "count lazily while iterating: `with open(path) as f: n = sum(1 for _ in f)`",
            )

    def visit_Subscript(self, node: ast.Subscript) -> None:
        self.children(node)
        call = node.value
        index = _index(node.slice)
        if index is None or not isinstance(call, ast.Call) or call_name(call) != "sorted":
            return
        if len(call.args) != 1 or isinstance(call.args[0], ast.Starred):
            return
        key: ast.expr | None = None
        reverse = False
        for kw in call.keywords:
            if kw.arg == "key":
                key = kw.value
            elif kw.arg == "reverse" and isinstance(kw.value, ast.Constant) and kw.value.value in (True, False):
                reverse = bool(kw.value.value)
            else:
                return  # **kwargs or a computed reverse: direction unknown
        func = "min" if (index == 0) != reverse else "max"
        scope = self.scope
        arg = call.args[0]
        self.pending.append(lambda: None if scope.lookup("sorted") else self._sorted(node, arg, key, func, index))

    def _sorted(self, node: ast.Subscript, arg: ast.expr, key: ast.expr | None, func: str, index: int) -> None:
        fix = None
        replacement = f"{func}(...)"
        arg_text = self.lines.segment(arg)
        key_text = self.lines.segment(key) if key is not None else ""
        if node.lineno == node.end_lineno and arg_text is not None and key_text is not None:
            if isinstance(arg, ast.GeneratorExp) and key is None and arg_text.startswith("("):
                arg_text = arg_text[1:-1]  # the sole-argument genexp borrows the call's parentheses
            replacement = f"{func}({arg_text}, key={key_text})" if key is not None else f"{func}({arg_text})"
            rng = self.lines.node_range(node)
            fix = Fix(description=f"Replace with {func}()", edits=(TextEdit(range=rng, new_text=replacement),))
        self.add(
            node,
            "ORC-P106",
            Severity.WARNING,
            f"sorting the whole sequence (O(n log n)) to take one element; {func}() is O(n)",
            f"use `{replacement}`; note that {func}() raises ValueError rather than IndexError on empty input "
            f"(pass default=... to avoid it)"
            + (", and among equal elements returns the first where sorted()[-1] gives the last" if index else ""),
            fix,
        )


def check(doc: Document, tree: ast.Module) -> list[Finding]:
    """Performance findings for `doc`, whose parsed form is `tree`."""
    walker = _Walker(doc)
    try:
        walker.visit_all(tree.body)
    except RecursionError:
        pass  # pathologically deep expressions: report what was found so far
    for resolve in walker.pending:
        resolve()
    return sorted(walker.findings, key=lambda f: (f.range.start.line, f.range.start.character, f.rule))
