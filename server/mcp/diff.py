"""Unified diffs: reading the changed lines out of one, and writing one from text edits."""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from orchestrator.errors import InvalidInputError
from orchestrator.types import Range, TextEdit

_HUNK = re.compile(r"^@@ -\d+(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")
_NO_NEWLINE = "\\ No newline at end of file"


@dataclass
class FileChange:
    """One file of a diff, on its new side: which lines were added, and the lines the hunks show."""

    path: str
    added: set[int] = field(default_factory=set)  # 1-based line numbers in the new file
    shown: dict[int, str] = field(default_factory=dict)  # every new-side line the hunks carry
    deleted: bool = False


def parse(text: str) -> list[FileChange]:
    """The files a unified diff (git or plain) changes; deleted files are marked, not dropped."""
    files: list[FileChange] = []
    current: FileChange | None = None
    old_path = ""
    line_no = 0
    old_left = new_left = 0  # lines of the current hunk still to come, per side
    for raw in text.splitlines():
        if current is not None and (old_left > 0 or new_left > 0):
            if raw.startswith("+"):
                current.added.add(line_no)
                current.shown[line_no] = raw[1:]
                line_no += 1
                new_left -= 1
            elif raw.startswith("-"):
                old_left -= 1
            elif raw.startswith(" ") or raw == "":
                current.shown[line_no] = raw[1:]
                line_no += 1
                old_left -= 1
                new_left -= 1
            continue  # "\\ No newline at end of file" is a marker
        if raw.startswith("--- "):
            old_path = _strip_prefix(raw[4:])
        elif raw.startswith("+++ "):
            new_path = _strip_prefix(raw[4:])
            deleted = new_path == "/dev/null"
            current = FileChange(path=old_path if deleted else new_path, deleted=deleted)
            files.append(current)
        elif (match := _HUNK.match(raw)) and current is not None:
            old_left = int(match.group(1)) if match.group(1) is not None else 1
            line_no = int(match.group(2))
            new_left = int(match.group(3)) if match.group(3) is not None else 1
    if not files:
        raise InvalidInputError("no file headers (---/+++) found: pass a unified diff, e.g. the output of `git diff`")
    return files


def _strip_prefix(name: str) -> str:
    name = name.split("\t", 1)[0].strip()
    if name.startswith('"') and name.endswith('"'):
        name = name[1:-1]
    if name != "/dev/null" and name[:2] in ("a/", "b/"):
        name = name[2:]
    return name


def sketch(change: FileChange) -> str:
    """A stand-in for a file not on disk: the lines the hunks show at their real numbers, blanks elsewhere."""
    last = max(change.shown, default=0)
    return "".join(change.shown.get(n, "") + "\n" for n in range(1, last + 1))


def apply_edits(text: str, edits: Sequence[TextEdit]) -> str:
    """`text` with LSP-style edits (0-based line and character) applied."""
    starts = [0]
    for line in text.splitlines(keepends=True):
        starts.append(starts[-1] + len(line))

    def offset(line: int, character: int) -> int:
        if line >= len(starts) - 1:
            return len(text)
        return min(starts[line] + character, starts[line + 1])

    out = text
    for edit in sorted(edits, key=lambda e: (e.range.start.line, e.range.start.character), reverse=True):
        start = offset(edit.range.start.line, edit.range.start.character)
        end = offset(edit.range.end.line, edit.range.end.character)
        out = out[:start] + edit.new_text + out[end:]
    return out


def unified(path: str, before: str, after: str, *, first_line: int = 0) -> str:
    """A `git apply`-able unified diff from `before` to `after` (empty when equal); `first_line`
    is where `before` starts in the file, 0-based, when it is an excerpt."""
    if before == after:
        return ""
    lines = difflib.unified_diff(
        before.splitlines(keepends=True), after.splitlines(keepends=True), f"a/{path}", f"b/{path}"
    )
    out = []
    for line in lines:
        if first_line and line.startswith("@@"):
            line = _HUNK_HEADER.sub(lambda m: _shift(m, first_line), line)
        out.append(line if line.endswith("\n") else line + "\n" + _NO_NEWLINE + "\n")
    return "".join(out)


_HUNK_HEADER = re.compile(r"([-+])(\d+)")


def _shift(match: re.Match[str], by: int) -> str:
    # An empty range names the line before it (0 = before the first): that shifts alike.
    return f"{match.group(1)}{int(match.group(2)) + by}"


def edits_diff(path: str, text: str, edits: Sequence[TextEdit], *, context: int = 3) -> str:
    """The diff of `edits`, computed on the lines around them only: a fix touches a few lines
    of what may be a long file."""
    if not edits:
        return ""
    lines = text.splitlines(keepends=True)
    lo = max(0, min(e.range.start.line for e in edits) - context)
    hi = min(len(lines), max(e.range.end.line for e in edits) + 1 + context)
    excerpt = "".join(lines[lo:hi])
    shifted = [
        TextEdit(
            range=Range.of(
                e.range.start.line - lo, e.range.start.character, e.range.end.line - lo, e.range.end.character
            ),
            new_text=e.new_text,
        )
        for e in edits
    ]
    return unified(path, excerpt, apply_edits(excerpt, shifted), first_line=lo)


def touches(changed: set[int], region: Range) -> bool:
    """Whether a 0-based range covers any of the 1-based changed lines."""
    return any(line + 1 in changed for line in range(region.start.line, region.end.line + 1))
