"""Context assembly: the slice of a document an AI request needs, within a token budget.

Every line of the document gets a priority: the selection first, then the signature
lines of the scopes around it, then the rest of the enclosing function or class, then
the imports, then nearby lines by distance. Lines are taken in that order until the
budget (minus the room reserved for the answer) is spent, and rendered in file order
with 1-based line numbers and a marker where lines were left out.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import PurePath

from pydantic import BaseModel, ConfigDict

from .tokens import TokenCounter
from .types import Document, Range

_LANGUAGES = {
    ".py": "python",
    ".pyi": "python",
    ".js": "javascript",
    ".mjs": "javascript",
    ".cjs": "javascript",
    ".jsx": "javascriptreact",
    ".ts": "typescript",
    ".tsx": "typescriptreact",
    ".java": "java",
    ".kt": "kotlin",
    ".go": "go",
    ".rs": "rust",
    ".c": "c",
    ".h": "c",
    ".cc": "cpp",
    ".cpp": "cpp",
    ".hpp": "cpp",
    ".cs": "csharp",
    ".swift": "swift",
    ".rb": "ruby",
    ".php": "php",
    ".scala": "scala",
    ".lua": "lua",
    ".sh": "shellscript",
    ".bash": "shellscript",
    ".yaml": "yaml",
    ".yml": "yaml",
    ".toml": "toml",
    ".json": "json",
    ".md": "markdown",
    ".sql": "sql",
    ".dart": "dart",
}
_BRACE_LANGUAGES = {
    "javascript",
    "javascriptreact",
    "typescript",
    "typescriptreact",
    "java",
    "kotlin",
    "go",
    "rust",
    "c",
    "cpp",
    "csharp",
    "swift",
    "php",
    "scala",
    "dart",
}
_SCOPE_HEADER = re.compile(
    r"\b(function|class|def|fn|fun|func|interface|struct|enum|impl|trait|module|namespace|object)\b|=>|"
    r"\)\s*(const\s*)?(->\s*[\w:<>&\[\], ]+|:\s*[\w<>\[\]|&.,? ]+)?\s*(throws\s+[\w., ]+)?\s*\{?\s*$"
)
_CONTROL = re.compile(r"^\s*(\}\s*)?(if|else|for|foreach|while|switch|catch|do|try|finally|return|with|unsafe)\b")
_CLASS_HEADER = re.compile(r"\b(class|interface|struct|impl|trait|enum|object|namespace|module)\b")
_IMPORT_LINE = re.compile(
    r"^\s*(import\s|from\s+\S+\s+import\s|#\s*include\s|using\s+[\w.]+\s*;|package\s|use\s+[\w:]+|"
    r"(const|let|var)\s+.*=\s*require\(|require\s*\(?['\"]|extern\s+crate\s)"
)
GAP = "…"


def language_of(path: str) -> str:
    return _LANGUAGES.get(PurePath(path).suffix.lower(), "plaintext")


class CodeContext(BaseModel):
    model_config = ConfigDict(frozen=True)

    path: str
    language: str
    text: str
    tokens: int
    trimmed: bool
    enclosing: str | None = None
    selection: Range | None = None
    lines: tuple[int, ...] = ()  # 0-based lines included


@dataclass
class _Scope:
    name: str
    kind: str  # "function", "class", "block"
    start: int  # 0-based, first line (decorators included)
    end: int  # 0-based, inclusive
    header_end: int  # last line of the signature


def build_context(
    doc: Document,
    selection: Range | None = None,
    *,
    counter: TokenCounter,
    max_tokens: int,
    reserve_for_answer: int = 0,
    nearby_lines: int = 30,
) -> CodeContext:
    """Assemble the context for `doc` around `selection` in at most `max_tokens - reserve_for_answer`."""
    budget = max(0, max_tokens - reserve_for_answer)
    lines = doc.text.splitlines()
    if not lines:
        return CodeContext(path=doc.path, language=doc.language, text="", tokens=0, trimmed=False, selection=selection)
    last = len(lines) - 1
    if selection is not None:
        sel_start = min(selection.start.line, last)
        sel_end = min(max(selection.end.line, sel_start), last)
        # A selection ending at column 0 of a line does not include that line.
        if selection.end.character == 0 and sel_end > sel_start:
            sel_end -= 1
    else:
        sel_start, sel_end = 0, last

    tree = _parse_python(doc)
    scopes = _scopes(doc, tree, lines, sel_start, sel_end)
    priority: dict[int, float] = {}

    def offer(line: int, score: float) -> None:
        if 0 <= line <= last and score < priority.get(line, float("inf")):
            priority[line] = score

    selected = range(sel_start, sel_end + 1) if selection is not None else range(0)
    for line in selected:
        offer(line, 0.0)
    for depth, scope in enumerate(reversed(scopes)):  # innermost first
        for line in range(scope.start, scope.header_end + 1):
            offer(line, 1.0 + depth / 100)
    if scopes:
        inner = scopes[-1]
        for line in range(inner.start, inner.end + 1):
            offer(line, 2.0 + _distance(line, sel_start, sel_end) / 100_000)
    for line in _import_lines(tree, lines):
        offer(line, 3.0 + line / 100_000)
    reach = nearby_lines if selection is not None else len(lines)
    for line in range(max(0, sel_start - reach), min(last, sel_end + reach) + 1):
        offer(line, 4.0 + _distance(line, sel_start, sel_end) / 100_000)

    width = len(str(len(lines)))
    rendered = {n: _render(n, lines[n], width, n in selected) for n in priority}
    chosen: set[int] = set()
    spent = 0
    gap_cost = counter.count(f"{' ' * width}  {GAP}\n")
    for line in sorted(priority, key=lambda n: (priority[n], n)):
        cost = counter.count(rendered[line]) + gap_cost
        if spent + cost > budget:
            if priority[line] == 0.0:
                continue  # keep trying: a shorter selected line may still fit
            break
        chosen.add(line)
        spent += cost

    text = _assemble(sorted(chosen), rendered, width)
    enclosing = f"{scopes[-1].kind} {'.'.join(s.name for s in scopes if s.kind != 'block')}" if scopes else None
    return CodeContext(
        path=doc.path,
        language=doc.language,
        text=text,
        tokens=counter.count(text),
        trimmed=len(chosen) < len(priority) or len(chosen) < len(lines),
        enclosing=enclosing,
        selection=selection,
        lines=tuple(sorted(chosen)),
    )


def _distance(line: int, start: int, end: int) -> int:
    return start - line if line < start else max(0, line - end)


def _render(number: int, text: str, width: int, selected: bool) -> str:
    return f"{'>' if selected else ' '}{number + 1:>{width}} | {text}\n"


def _assemble(chosen: list[int], rendered: dict[int, str], width: int) -> str:
    out: list[str] = []
    previous = -1
    for line in chosen:
        if previous >= 0 and line != previous + 1 or previous < 0 and line > 0:
            out.append(f" {' ' * width} {GAP}\n")
        out.append(rendered[line])
        previous = line
    return "".join(out)


def _parse_python(doc: Document) -> ast.Module | None:
    if doc.language != "python" and not doc.path.endswith((".py", ".pyi")):
        return None
    try:
        return ast.parse(doc.text)
    except (SyntaxError, ValueError):
        # Code being edited is often broken: fall back to the indentation heuristics.
        return None


def _scopes(doc: Document, tree: ast.Module | None, lines: list[str], start: int, end: int) -> list[_Scope]:
    """Scopes enclosing lines start..end, outermost first."""
    if tree is not None:
        return _python_scopes(tree, start, end)
    if doc.language in _BRACE_LANGUAGES:
        return _brace_scopes(lines, start, end)
    return _indent_scopes(lines, start, end)


def _python_scopes(tree: ast.Module, start: int, end: int) -> list[_Scope]:
    found: list[_Scope] = []
    body: list[ast.stmt] = tree.body
    while True:
        for node in body:
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                continue
            first = min([node.lineno, *(d.lineno for d in node.decorator_list)]) - 1
            last = (node.end_lineno or node.lineno) - 1
            if first <= start and end <= last:
                header_end = max(node.lineno - 1, node.body[0].lineno - 2) if node.body else node.lineno - 1
                kind = "class" if isinstance(node, ast.ClassDef) else "function"
                found.append(_Scope(node.name, kind, first, last, header_end))
                body = node.body
                break
        else:
            return found


def _indent_of(line: str) -> int:
    return len(line) - len(line.lstrip())


def _indent_scopes(lines: list[str], start: int, end: int) -> list[_Scope]:
    found: list[_Scope] = []
    target = start
    while True:
        indent = _indent_of(lines[target]) if lines[target].strip() else 10**6
        header = next(
            (i for i in range(target - 1, -1, -1) if lines[i].strip() and _indent_of(lines[i]) < indent), None
        )
        if header is None:
            break
        head_indent = _indent_of(lines[header])
        last = header
        for i in range(header + 1, len(lines)):
            if lines[i].strip() and _indent_of(lines[i]) <= head_indent:
                break
            last = i
        if last >= end:
            name = re.sub(r"[\s:{(].*$", "", lines[header].strip().split(" ", 1)[-1]) or lines[header].strip()
            kind = "class" if _CLASS_HEADER.search(lines[header]) else "function"
            found.append(_Scope(name, kind, header, last, header))
        target = header
        if head_indent == 0:
            break
    return list(reversed(found))


def _brace_scopes(lines: list[str], start: int, end: int) -> list[_Scope]:
    blocks = _brace_blocks(lines)
    around = sorted((b for b in blocks if b[0] <= start and b[1] >= end), key=lambda b: b[0])
    found: list[_Scope] = []
    for open_line, close_line in around:
        header = open_line
        if lines[open_line].strip() == "{" and open_line > 0:
            header = open_line - 1
        text = lines[header]
        if _CONTROL.match(text) or not _SCOPE_HEADER.search(text):
            continue
        kind = "class" if _CLASS_HEADER.search(text) else "function"
        match = re.search(r"(\w+)\s*(<[^>]*>)?\s*(\(|\{|=|:|$)", text)
        name = match.group(1) if match else text.strip()
        found.append(_Scope(name, kind, header, close_line, open_line))
    return found


def _brace_blocks(lines: list[str]) -> list[tuple[int, int]]:
    """(open line, close line) of every brace pair, skipping strings and comments roughly."""
    stack: list[int] = []
    blocks: list[tuple[int, int]] = []
    in_block_comment = False
    for number, line in enumerate(lines):
        i, quote = 0, ""
        while i < len(line):
            ch = line[i]
            if in_block_comment:
                if line.startswith("*/", i):
                    in_block_comment, i = False, i + 1
            elif quote:
                if ch == "\\":
                    i += 1
                elif ch == quote:
                    quote = ""
            elif line.startswith("//", i):
                break
            elif line.startswith("/*", i):
                in_block_comment, i = True, i + 1
            elif ch in "\"'`":
                quote = ch
            elif ch == "{":
                stack.append(number)
            elif ch == "}" and stack:
                blocks.append((stack.pop(), number))
            i += 1
    return blocks


def _import_lines(tree: ast.Module | None, lines: list[str]) -> list[int]:
    if tree is not None:
        out: list[int] = []
        for node in tree.body:
            if isinstance(node, ast.Import | ast.ImportFrom):
                out.extend(range(node.lineno - 1, (node.end_lineno or node.lineno)))
        return out
    return [i for i, line in enumerate(lines) if _IMPORT_LINE.match(line)]
