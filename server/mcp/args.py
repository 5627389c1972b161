"""Tool arguments shared by several tools, typed and described once; and the code they name."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import Field

from orchestrator.context import language_of
from orchestrator.errors import InvalidInputError
from orchestrator.types import Document, Range

from .paths import Roots

ProfileName = Literal["quality", "balanced", "speed", "budget", "long_context"]
KindName = Literal["performance", "security", "style", "refactoring", "testing"]
_LINES = re.compile(r"^\s*(\d+)\s*(?:-\s*(\d+)\s*)?$")

PathArg = Annotated[str | None, Field(description="file in the roots")]
CodeArg = Annotated[str | None, Field(description="inline code, instead of path")]
LanguageArg = Annotated[str | None, Field(description="e.g. python")]
LinesArg = Annotated[str | None, Field(description="A-B, 1-based")]
ProfileArg = Annotated[ProfileName | None, Field(description="routing profile")]
KindsArg = Annotated[list[KindName] | None, Field(description="default: all")]

_FILE_REF = re.compile(r"^(.+?)(?::(\d+)(?:-(\d+))?)?$")


def document(roots: Roots, path: str | None, code: str | None, language: str | None) -> tuple[Document, str]:
    """The document a call is about and the name to show for it: inline `code` (which `path`
    may name), else the file at `path` inside the roots."""
    if code is not None:
        name = path or ("snippet.py" if (language or "python") == "python" else "snippet")
        return Document(path=name, text=code, language=language or language_of(name)), name
    if not path:
        raise InvalidInputError("pass `path` (a file in the roots) or `code`")
    real, text = roots.read_text(path)
    doc = Document(path=str(real), text=text, language=language or language_of(str(real)), on_disk=True)
    return doc, roots.relative(real)


def selection(doc: Document, lines: str | None) -> Range | None:
    """Lines "A-B" (1-based, inclusive) as a range from the start of A to the end of B."""
    if not lines:
        return None
    match = _LINES.match(lines)
    if not match:
        raise InvalidInputError(f"lines {lines!r}: expected A-B, 1-based, e.g. 10-20")
    start, end = int(match.group(1)), int(match.group(2) or match.group(1))
    count = len(doc.lines)
    if start < 1 or end < start or start > max(count, 1):
        raise InvalidInputError(f"lines {lines!r}: need 1 <= A <= B and A <= {count} (the file's last line)")
    end = min(end, max(count, 1))
    width = len(doc.lines[end - 1]) if count else 0
    return Range.of(start - 1, 0, end - 1, width)


def file_ref(roots: Roots, ref: str) -> tuple[Document, str, Range | None]:
    """`path` or `path:A-B` → the file's document, its name and the selected lines."""
    match = _FILE_REF.match(ref.strip())
    if not match:
        raise InvalidInputError(f"files: {ref!r} is not `path` or `path:A-B`")
    path, start, end = match.groups()
    doc, name = document(roots, path, None, None)
    spec = f"{start}-{end or start}" if start else None
    return doc, name, selection(doc, spec)
