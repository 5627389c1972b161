"""Core value types shared by every part of the orchestrator.

All positions are 0-based (line and character), as in LSP; front ends that speak
1-based positions (text output, SARIF) convert at their edge.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)


class AnalysisKind(StrEnum):
    PERFORMANCE = "performance"
    SECURITY = "security"
    STYLE = "style"
    REFACTORING = "refactoring"
    TESTING = "testing"


class Profile(StrEnum):
    QUALITY = "quality"
    BALANCED = "balanced"
    SPEED = "speed"
    BUDGET = "budget"
    LONG_CONTEXT = "long_context"


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"
    INFO = "info"
    HINT = "hint"


class Capability(StrEnum):
    CHAT = "chat"
    FIM = "fim"
    JSON = "json"
    TOOLS = "tools"
    VISION = "vision"


class Position(_Frozen):
    line: int = Field(ge=0)
    character: int = Field(ge=0)


class Range(_Frozen):
    start: Position
    end: Position

    @classmethod
    def lines(cls, start_line: int, end_line: int | None = None, end_character: int = 0) -> Range:
        """A range from the start of `start_line` to `end_character` of `end_line`."""
        end = start_line if end_line is None else end_line
        return cls(start=Position(line=start_line, character=0), end=Position(line=end, character=end_character))

    @classmethod
    def of(cls, line: int, character: int, end_line: int, end_character: int) -> Range:
        return cls(
            start=Position(line=line, character=character),
            end=Position(line=end_line, character=end_character),
        )


class TextEdit(_Frozen):
    range: Range
    new_text: str


class Fix(_Frozen):
    description: str
    edits: tuple[TextEdit, ...]


class Finding(_Frozen):
    kind: AnalysisKind
    severity: Severity
    range: Range
    message: str
    rule: str
    source: str
    suggestion: str | None = None
    fix: Fix | None = None
    path: str = ""
    url: str | None = None
    agreement: int = 1

    @property
    def line(self) -> int:
        return self.range.start.line


class Document(_Frozen):
    """A text document as the core sees it: where it lives and what it holds now.

    `text` may differ from what is on disk (an editor buffer); `on_disk` says that it
    was read from `path` unchanged, which lets analyzers hand the path to tools.
    """

    path: str
    text: str
    language: str = "plaintext"
    on_disk: bool = False

    @property
    def lines(self) -> list[str]:
        return self.text.splitlines()


class Message(_Frozen):
    role: Literal["system", "user", "assistant"]
    content: str


class Usage(_Frozen):
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    estimated: bool = False

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens


class Request(_Frozen):
    model: str
    messages: tuple[Message, ...]
    system: str | None = None
    max_tokens: int = 1024
    temperature: float | None = None
    json_mode: bool = False
    stop: tuple[str, ...] = ()


class Chunk(_Frozen):
    """A piece of a streamed answer; the last one carries usage and finish reason."""

    text: str = ""
    usage: Usage | None = None
    finish_reason: str | None = None


class Response(_Frozen):
    model: str
    provider: str
    text: str
    usage: Usage
    finish_reason: str | None = None
