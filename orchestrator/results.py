"""What the facade's verbs return: plain frozen models, plus the handle of a streamed answer."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from contextlib import aclosing

from pydantic import BaseModel, ConfigDict, Field

from .engine import StreamState
from .types import Chunk, Finding, TextEdit, Usage


class AnalysisResult(BaseModel):
    model_config = ConfigDict(frozen=True)

    findings: list[Finding]
    models: list[str] = Field(default_factory=list)
    usage: Usage = Field(default_factory=Usage)
    reason: str = ""
    notes: list[str] = Field(default_factory=list)
    consensus: bool = False

    @property
    def cost_usd(self) -> float:
        return self.usage.cost_usd


class TextResult(BaseModel):
    model_config = ConfigDict(frozen=True)

    text: str
    model: str
    usage: Usage
    reason: str
    cached: bool = False


class EditResult(BaseModel):
    model_config = ConfigDict(frozen=True)

    edits: list[TextEdit]
    explanation: str = ""
    model: str | None = None  # None: the finding's own safe fix, no model asked
    usage: Usage = Field(default_factory=Usage)
    reason: str = ""


class Completion(TextResult):
    """The text to insert at the cursor (fill in the middle)."""


class ConsensusAnswer(BaseModel):
    model_config = ConfigDict(frozen=True)

    answers: dict[str, TextResult]
    synthesis: TextResult
    usage: Usage
    agreement: str | None = None  # "high", "medium" or "low", as the synthesis judged it


class ChatStream:
    """An answer being streamed: iterate for `Chunk`s; `state` has model, reason, usage."""

    def __init__(self, chunks: AsyncIterator[Chunk], state: StreamState):
        self._chunks = chunks
        self.state = state

    def __aiter__(self) -> AsyncIterator[Chunk]:
        return self._chunks

    async def aclose(self) -> None:
        await self._chunks.aclose()  # type: ignore[attr-defined]

    async def text(self) -> str:
        async with aclosing(self._chunks) as chunks:
            async for _ in chunks:
                pass
        return "".join(self.state.parts)


def sum_usage(usages: Iterable[Usage]) -> Usage:
    items = list(usages)
    return Usage(
        input_tokens=sum(u.input_tokens for u in items),
        output_tokens=sum(u.output_tokens for u in items),
        cost_usd=sum(u.cost_usd for u in items),
        estimated=any(u.estimated for u in items),
    )
