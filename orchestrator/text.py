"""Lines as editors, LSP and `ast` count them."""

from __future__ import annotations

import re

_LINE_BREAK = re.compile(r"\r\n|\r|\n")


def split_lines(text: str) -> list[str]:
    """Split on \\n, \\r\\n and \\r only: str.splitlines() also breaks on form feeds and
    Unicode line separators, which would put every later line off by one."""
    lines = _LINE_BREAK.split(text)
    if lines and lines[-1] == "":
        lines.pop()
    return lines
