"""Positions between the core and the client.

The core counts characters in code points (Python `str` indices) on lines split the way
LSP splits them. The client counts in the position encoding negotiated at `initialize`:
UTF-16 code units unless both sides agreed on UTF-8 or UTF-32 (`general.positionEncodings`).
Everything here is plain Python, so that it costs nothing at import.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from lsprotocol import types

UTF8 = types.PositionEncodingKind.Utf8
UTF16 = types.PositionEncodingKind.Utf16
UTF32 = types.PositionEncodingKind.Utf32

_LINE_BREAK = re.compile(r"\r\n|\r|\n")


def split_lines(text: str) -> list[str]:
    """The lines of `text` as LSP counts them (\\n, \\r\\n and \\r end a line), without their breaks."""
    return _LINE_BREAK.split(text)


def _codec(encoding: str | None) -> str | None:
    if encoding in (UTF32, "utf-32"):
        return None
    if encoding in (UTF8, "utf-8"):
        return "utf-8"
    return "utf-16-le"


def to_client(line: str, character: int, encoding: str | None) -> int:
    """A code point column in `line` as the client's code units."""
    character = max(0, min(character, len(line)))
    codec = _codec(encoding)
    if codec is None or line.isascii():
        return character
    size = len(line[:character].encode(codec, "surrogatepass"))
    return size // 2 if codec == "utf-16-le" else size


def from_client(line: str, units: int, encoding: str | None) -> int:
    """The client's code unit column in `line` as a code point column (clamped to the line;
    a column inside a character counts as that character's start)."""
    units = max(0, units)
    codec = _codec(encoding)
    if codec is None or line.isascii():
        return min(units, len(line))
    seen = 0
    for index, char in enumerate(line):
        width = _width(char, codec)
        if seen + width > units:
            return index
        seen += width
    return len(line)


def _width(char: str, codec: str) -> int:
    point = ord(char)
    if codec == "utf-16-le":
        return 2 if point > 0xFFFF else 1
    return 1 if point < 0x80 else 2 if point < 0x800 else 3 if point < 0x10000 else 4


def _line(lines: Sequence[str], index: int) -> str:
    return lines[index] if 0 <= index < len(lines) else ""


def position_to_client(lines: Sequence[str], line: int, character: int, encoding: str | None) -> types.Position:
    """A core position (code points) as an LSP position; lines past the end clamp to it."""
    if line >= len(lines):
        last = max(len(lines) - 1, 0)
        return types.Position(line=last, character=to_client(_line(lines, last), len(_line(lines, last)), encoding))
    return types.Position(line=line, character=to_client(_line(lines, line), character, encoding))


def position_from_client(lines: Sequence[str], position: types.Position, encoding: str | None) -> tuple[int, int]:
    """An LSP position as a core (line, code point column), clamped to the document."""
    if position.line >= len(lines):
        last = max(len(lines) - 1, 0)
        return last, len(_line(lines, last))
    return position.line, from_client(_line(lines, position.line), position.character, encoding)


def range_to_client(lines: Sequence[str], rng: object, encoding: str | None) -> types.Range:
    """A core `Range` (anything with .start/.end .line/.character) as an LSP range."""
    start, end = rng.start, rng.end  # type: ignore[attr-defined]
    return types.Range(
        start=position_to_client(lines, start.line, start.character, encoding),
        end=position_to_client(lines, end.line, end.character, encoding),
    )


def range_from_client(lines: Sequence[str], rng: types.Range, encoding: str | None) -> tuple[int, int, int, int]:
    """An LSP range as core (line, character, end_line, end_character) in code points."""
    sl, sc = position_from_client(lines, rng.start, encoding)
    el, ec = position_from_client(lines, rng.end, encoding)
    if (el, ec) < (sl, sc):
        sl, sc, el, ec = el, ec, sl, sc
    return sl, sc, el, ec


def offset_at(text: str, position: types.Position, encoding: str | None) -> int:
    """The index in `text` of an LSP position, clamped to the document; one pass over the
    line breaks before it, whatever the document's size."""
    start = 0
    if position.line > 0:
        for count, match in enumerate(_LINE_BREAK.finditer(text), 1):
            if count == position.line:
                start = match.end()
                break
        else:
            return len(text)
    after = _LINE_BREAK.search(text, start)
    line = text[start : after.start() if after else len(text)]
    return start + from_client(line, position.character, encoding)
