"""Shared helpers for the ast analyzers: positions, names, and a scope-aware walker.

`ast` reports 1-based lines and UTF-8 *byte* columns; findings use 0-based lines and
character (code point) columns. `Lines` does that conversion against the document text.
Lines are split on \\r\\n, \\r and \\n only: that is what both the Python tokenizer and
LSP treat as line ends (`str.splitlines` would also split on form feeds and friends).
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

from orchestrator.types import Position, Range

_LINE_BREAK = re.compile(r"\r\n|\r|\n")

Definition = ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef


class Lines:
    """Converts ast positions of one document into `Position`/`Range` values."""

    __slots__ = ("_lines", "_text")

    def __init__(self, text: str) -> None:
        self._text = text
        self._lines: list[str] | None = None

    def line(self, lineno: int) -> str:
        """The text of 1-based line `lineno` ("" past the end)."""
        if self._lines is None:
            # Split lazily: many analyzer runs find nothing and never need positions.
            self._lines = _LINE_BREAK.split(self._text)
        if 1 <= lineno <= len(self._lines):
            return self._lines[lineno - 1]
        return ""

    def char(self, lineno: int, col: int) -> int:
        """Character offset of UTF-8 byte offset `col` on 1-based line `lineno`."""
        text = self.line(lineno)
        if col <= 0:
            return 0
        if text.isascii():
            return min(col, len(text))
        return len(text.encode("utf-8")[:col].decode("utf-8", errors="ignore"))

    def position(self, lineno: int, col: int) -> Position:
        return Position(line=max(lineno - 1, 0), character=self.char(lineno, col))

    def span(self, lineno: int, col: int, end_lineno: int, end_col: int) -> Range:
        return Range(start=self.position(lineno, col), end=self.position(end_lineno, end_col))

    def node_range(self, node: ast.AST) -> Range:
        lineno: int = getattr(node, "lineno", 1)
        col: int = getattr(node, "col_offset", 0)
        end_lineno: int = getattr(node, "end_lineno", None) or lineno
        end_col: int = getattr(node, "end_col_offset", None) or col
        return self.span(lineno, col, end_lineno, end_col)

    def header_range(self, node: ast.AST, last: ast.AST) -> Range:
        """From the start of `node` to the end of `last` (e.g. `for x in xs`)."""
        end_lineno: int = getattr(last, "end_lineno", None) or getattr(node, "lineno", 1)
        end_col: int = getattr(last, "end_col_offset", None) or 0
        return self.span(getattr(node, "lineno", 1), getattr(node, "col_offset", 0), end_lineno, end_col)

    def name_range(self, node: Definition) -> Range:
        """The range of the name in a `def`/`class` line.

        Python 3.11 ast has no position for the name itself, so look for it after the
        keyword; fall back to the keyword when the name sits on a continuation line.
        """
        text = self.line(node.lineno)
        start = self.char(node.lineno, node.col_offset)
        match = re.compile(r"(?:def|class)\s+(" + re.escape(node.name) + r")\b").search(text, start)
        if match is None:
            return Range.of(node.lineno - 1, start, node.lineno - 1, len(text))
        return Range.of(node.lineno - 1, match.start(1), node.lineno - 1, match.end(1))

    def segment(self, node: ast.AST) -> str | None:
        """Source text of a node that sits on one line, else None."""
        lineno = getattr(node, "lineno", None)
        if lineno is None or getattr(node, "end_lineno", None) != lineno:
            return None
        text = self.line(lineno)
        return text[
            self.char(lineno, getattr(node, "col_offset", 0)) : self.char(lineno, getattr(node, "end_col_offset", 0))
        ]


def dotted_name(node: ast.AST) -> str | None:
    """`a.b.c` for a Name/Attribute chain, else None."""
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    parts.append(node.id)
    return ".".join(reversed(parts))


def call_name(node: ast.AST) -> str | None:
    """Dotted name of what a Call calls (`re.compile`, `sorted`), else None."""
    return dotted_name(node.func) if isinstance(node, ast.Call) else None


def target_names(target: ast.AST) -> list[str]:
    """Names bound by an assignment/for target (`a`, `a, (b, *c)`)."""
    if isinstance(target, ast.Name):
        return [target.id]
    if isinstance(target, (ast.Tuple, ast.List)):
        return [name for elt in target.elts for name in target_names(elt)]
    if isinstance(target, ast.Starred):
        return target_names(target.value)
    return []


def docstring_lines(node: ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef | ast.Module) -> int:
    """How many lines the docstring of `node` spans (0 without one)."""
    body = node.body
    if body and isinstance(body[0], ast.Expr):
        value = body[0].value
        if isinstance(value, ast.Constant) and isinstance(value.value, str):
            return (value.end_lineno or value.lineno) - value.lineno + 1
    return 0


# -- what a name holds -----------------------------------------------------------------

CONTAINERS = frozenset({"list", "dict", "set", "deque", "tuple"})


def _table(spec: str) -> dict[str, str]:
    """`"kind: name name; kind: name"` -> {name: kind}."""
    table: dict[str, str] = {}
    for entry in spec.split(";"):
        kind, names = entry.split(":")
        table.update(dict.fromkeys(names.split(), kind.strip()))
    return table


_KIND_OF_CALL = _table(
    "list: list; set: set frozenset; tuple: tuple; str: str; deque: deque collections.deque;"
    "dict: dict defaultdict collections.defaultdict OrderedDict collections.OrderedDict Counter collections.Counter;"
    "iterator: iter open map filter zip reversed enumerate os.scandir"
)
_KIND_OF_ANNOTATION = _table(
    "list: list List typing.List; str: str; dict: dict Dict typing.Dict; set: set Set typing.Set;"
    "deque: deque Deque collections.deque typing.Deque"
)


def is_str_expr(node: ast.AST) -> bool:
    """Whether `node` plainly evaluates to a str (literal, f-string, str(), "".join, "%s" % x)."""
    if isinstance(node, ast.Constant):
        return isinstance(node.value, str)
    if isinstance(node, ast.JoinedStr):
        return True
    if isinstance(node, ast.Call):
        func = node.func
        if isinstance(func, ast.Attribute):
            return func.attr in ("join", "format") and is_str_expr(func.value)
        return call_name(node) == "str"
    if isinstance(node, ast.BinOp):
        if isinstance(node.op, ast.Mod):
            return is_str_expr(node.left)
        if isinstance(node.op, ast.Add):
            return is_str_expr(node.left) or is_str_expr(node.right)
    return False


def value_kind(node: ast.AST | None) -> str:
    """The kind of an assigned value: list, dict, set, tuple, deque, str, iterator or other."""
    if isinstance(node, (ast.List, ast.ListComp)):
        return "list"
    if isinstance(node, (ast.Dict, ast.DictComp)):
        return "dict"
    if isinstance(node, (ast.Set, ast.SetComp)):
        return "set"
    if isinstance(node, ast.Tuple):
        return "tuple"
    if isinstance(node, ast.GeneratorExp):
        return "iterator"
    if node is not None and is_str_expr(node):
        return "str"
    if isinstance(node, ast.Call):
        name = call_name(node) or ""
        return "iterator" if name.startswith("itertools.") else _KIND_OF_CALL.get(name, "other")
    return "other"


def annotation_kind(node: ast.AST | None) -> str:
    if isinstance(node, ast.Subscript):
        node = node.value
    return _KIND_OF_ANNOTATION.get(dotted_name(node) or "", "other") if node is not None else "other"


# (kind of the bound value, ids of the loops active where the binding happens)
Binding = tuple[str, tuple[int, ...]]


class Scope:
    """Bindings of one module, function, comprehension or class body."""

    __slots__ = ("bindings", "kind", "parent")

    def __init__(self, kind: str, parent: Scope | None) -> None:
        self.kind = kind
        self.parent = parent
        self.bindings: dict[str, list[Binding]] = {}

    def lookup(self, name: str) -> list[Binding] | None:
        """Every binding of `name` in the scope Python would resolve it in."""
        scope: Scope | None = self
        while scope is not None:
            # Class bodies are invisible from the functions nested in them.
            if scope is self or scope.kind != "class":
                found = scope.bindings.get(name)
                if found:
                    return found
            scope = scope.parent
        return None


class ScopedWalker:
    """A single-pass visitor that tracks scopes, bindings and enclosing loops.

    Subclasses add `visit_<NodeType>` methods for what they check (call `self.children`
    to keep descending) and may override `on_iteration`. `self.loops` holds the ids of
    the loops around the current node within the current function (a function or
    lambda body starts afresh); `self.iters` the iterables of the enclosing `for`
    loops and comprehension generators. `self.imports` maps local names to what they
    import (`{"re": "re", "rc": "re.compile"}`). Bindings are recorded as they are met,
    so checks that depend on later bindings should be decided after the walk.
    """

    _dispatch: ClassVar[dict[type, Callable[..., None] | None]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._dispatch = {}

    def __init__(self) -> None:
        self.scope = Scope("module", None)
        self.loops: list[int] = []
        self.iters: list[ast.expr] = []
        self.imports: dict[str, str] = {}

    def visit(self, node: ast.AST) -> None:
        cls = type(node)
        try:
            handler = self._dispatch[cls]
        except KeyError:
            handler = self._dispatch[cls] = getattr(type(self), "visit_" + cls.__name__, None)
        if handler is None:
            self.children(node)
        else:
            handler(self, node)

    def children(self, node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            self.visit(child)

    def visit_all(self, nodes: Sequence[ast.AST]) -> None:
        for node in nodes:
            self.visit(node)

    def on_iteration(self, start: ast.AST, iterable: ast.expr) -> None:
        """Called for each for-loop/generator before it is pushed on `self.iters`."""

    # -- bindings -----------------------------------------------------------------------

    def bind(self, name: str, kind: str = "other") -> None:
        self.scope.bindings.setdefault(name, []).append((kind, tuple(self.loops)))

    def bind_target(self, target: ast.AST, value: ast.AST | None) -> None:
        if isinstance(target, ast.Name):
            self.bind(target.id, value_kind(value))
            return
        if (
            isinstance(target, (ast.Tuple, ast.List))
            and isinstance(value, (ast.Tuple, ast.List))
            and len(target.elts) == len(value.elts)
            and not any(isinstance(e, ast.Starred) for e in (*target.elts, *value.elts))
        ):
            for sub_target, sub_value in zip(target.elts, value.elts):
                self.bind_target(sub_target, sub_value)
            return
        for name in target_names(target):
            self.bind(name)
        self.visit(target)  # subscripts and attributes hold expressions too

    def visit_Assign(self, node: ast.Assign) -> None:
        self.visit(node.value)
        for target in node.targets:
            self.bind_target(target, node.value)

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        if node.value is None:
            return
        self.visit(node.value)
        if isinstance(node.target, ast.Name):
            kind = value_kind(node.value)
            self.bind(node.target.id, kind if kind != "other" else annotation_kind(node.annotation))
        else:
            self.visit(node.target)

    def visit_NamedExpr(self, node: ast.NamedExpr) -> None:
        self.visit(node.value)
        self.bind(node.target.id, value_kind(node.value))

    def visit_With(self, node: ast.With | ast.AsyncWith) -> None:
        for item in node.items:
            self.visit(item.context_expr)
            if item.optional_vars is not None:
                self.bind_target(item.optional_vars, None)
        self.visit_all(node.body)

    visit_AsyncWith = visit_With

    def visit_ExceptHandler(self, node: ast.ExceptHandler) -> None:
        if node.type is not None:
            self.visit(node.type)
        if node.name:
            self.bind(node.name)
        self.visit_all(node.body)

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            local = alias.asname or alias.name.split(".")[0]
            self.bind(local)
            self.imports[local] = alias.name if alias.asname else local

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        for alias in node.names:
            local = alias.asname or alias.name
            self.bind(local)
            self.imports[local] = f"{node.module}.{alias.name}" if node.module and not node.level else alias.name

    def visit_MatchAs(self, node: ast.MatchAs | ast.MatchStar) -> None:
        if node.name:
            self.bind(node.name)
        self.children(node)

    visit_MatchStar = visit_MatchAs

    # -- scopes and loops ---------------------------------------------------------------

    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda) -> None:
        args = node.args
        if not isinstance(node, ast.Lambda):
            self.visit_all(node.decorator_list)
            self.bind(node.name)
        self.visit_all(args.defaults)
        self.visit_all([d for d in args.kw_defaults if d is not None])
        scope = Scope("function", self.scope)
        for arg in (*args.posonlyargs, *args.args, *args.kwonlyargs):
            scope.bindings[arg.arg] = [(annotation_kind(arg.annotation), ())]
        for arg in (args.vararg, args.kwarg):
            if arg is not None:
                scope.bindings[arg.arg] = [("other", ())]
        saved = self.scope, self.loops, self.iters
        self.scope, self.loops, self.iters = scope, [], []
        if isinstance(node, ast.Lambda):
            self.visit(node.body)
        else:
            self.visit_all(node.body)
        self.scope, self.loops, self.iters = saved

    visit_AsyncFunctionDef = visit_FunctionDef
    visit_Lambda = visit_FunctionDef

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        self.visit_all(node.decorator_list)
        self.visit_all(node.bases)
        self.visit_all([kw.value for kw in node.keywords])
        self.bind(node.name)
        saved = self.scope
        self.scope = Scope("class", saved)
        self.visit_all(node.body)
        self.scope = saved

    def visit_For(self, node: ast.For | ast.AsyncFor) -> None:
        self.visit(node.iter)
        self.on_iteration(node, node.iter)
        self.loops.append(id(node))
        self.bind_target(node.target, None)  # rebound on every iteration: a binding inside the loop
        self.iters.append(node.iter)
        self.visit_all(node.body)
        self.iters.pop()
        self.loops.pop()
        self.visit_all(node.orelse)

    visit_AsyncFor = visit_For

    def visit_While(self, node: ast.While) -> None:
        self.loops.append(id(node))  # the condition runs on every iteration too
        self.visit(node.test)
        self.visit_all(node.body)
        self.loops.pop()
        self.visit_all(node.orelse)

    def visit_ListComp(self, node: ast.ListComp | ast.SetComp | ast.GeneratorExp | ast.DictComp) -> None:
        generators = node.generators
        # The first iterable is evaluated once, outside the comprehension's own scope.
        self.visit(generators[0].iter)
        saved = self.scope
        self.scope = Scope("function", saved)
        self.loops.append(id(node))
        for i, gen in enumerate(generators):
            if i:
                self.visit(gen.iter)
            self.on_iteration(gen.target, gen.iter)
            self.iters.append(gen.iter)
            for name in target_names(gen.target):
                self.bind(name)
            self.visit_all(gen.ifs)
        if isinstance(node, ast.DictComp):
            self.visit(node.key)
            self.visit(node.value)
        else:
            self.visit(node.elt)
        del self.iters[len(self.iters) - len(generators) :]
        self.loops.pop()
        self.scope = saved

    visit_SetComp = visit_ListComp
    visit_GeneratorExp = visit_ListComp
    visit_DictComp = visit_ListComp
