"""What the tools return: small, flat models (agents pay for every token of them), and the
conversions from the core's results. Lines are 1-based here, as agents and editors show them."""

from __future__ import annotations

import json
from collections.abc import Iterable

from mcp_types import CallToolResult, TextContent
from pydantic import BaseModel, Field

from orchestrator.catalog import ModelInfo
from orchestrator.ledger import BudgetState, UsageRow
from orchestrator.types import Document, Finding, Usage

from . import diff


class Spend(BaseModel):
    """What a call cost: tokens as the providers counted them (or our estimate) and USD."""

    tokens_in: int = 0
    tokens_out: int = 0
    cost_usd: float = 0.0


class FindingOut(BaseModel):
    kind: str
    severity: str
    lines: list[int] = Field(description="first, last (1-based)")
    message: str
    rule: str
    source: str
    suggestion: str | None = None
    fix: str | None = Field(default=None, description="unified diff")
    path: str | None = None
    agreement: int | None = Field(default=None, description="models agreeing")


class AnalysisOut(Spend):
    findings: list[FindingOut]
    models: list[str]
    reason: str
    notes: list[str]


class ReviewOut(AnalysisOut):
    files: list[str]


class AnswerOut(Spend):
    answer: str
    model: str
    reason: str
    cached: bool = False


class FixOut(Spend):
    diff: str = Field(description="unified diff")
    explanation: str
    model: str | None = Field(description="null: the analyzer's own fix")


class ConsensusOut(Spend):
    answers: dict[str, str] = Field(description="by model")
    synthesis: str
    agreement: str | None = Field(description="high|medium|low")


class ModelOut(BaseModel):
    id: str
    context: int
    max_out: int
    in_usd_mtok: float
    out_usd_mtok: float
    caps: list[str]
    quality: int
    available: bool = Field(description="key set and circuit closed")


class ModelsOut(BaseModel):
    models: list[ModelOut]


class BudgetOut(BaseModel):
    period: str
    budget_usd: float | None = Field(default=None, description="null: no budget set")
    spent_usd: float
    reserved_usd: float
    remaining_usd: float | None = None
    fraction: float
    alert_level: int = Field(description="last alert passed, %")


class UsageOut(BaseModel):
    period: str
    by: str
    rows: list[UsageRow]
    budget: BudgetOut

    @classmethod
    def of(cls, period: str, by: str, rows: list[UsageRow], budget: BudgetState) -> UsageOut:
        return cls(period=period, by=by, rows=rows, budget=BudgetOut(**budget.model_dump()))


def result(value: BaseModel) -> CallToolResult:
    """A tool result: the structured value without its nulls, and the same as compact JSON text
    for clients that only read text (the SDK's default would indent it: twice the tokens)."""
    data = value.model_dump(mode="json", exclude_none=True)
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return CallToolResult(content=[TextContent(type="text", text=text)], structured_content=data)


def spend(usage: Usage) -> dict[str, float | int]:
    return {"tokens_in": usage.input_tokens, "tokens_out": usage.output_tokens, "cost_usd": round(usage.cost_usd, 8)}


def finding(f: Finding, doc: Document, *, display: str, with_path: bool = False) -> FindingOut:
    fix = diff.edits_diff(display, doc.text, f.fix.edits) if f.fix is not None and f.fix.edits else None
    end = f.range.end.line
    # A range ending at column 0 of the next line covers the lines before it.
    if end > f.range.start.line and f.range.end.character == 0:
        end -= 1
    return FindingOut(
        kind=f.kind.value,
        severity=f.severity.value,
        lines=[f.range.start.line + 1, end + 1],
        message=f.message,
        rule=f.rule,
        source=f.source,
        suggestion=f.suggestion,
        fix=fix or None,
        path=display if with_path else None,
        agreement=f.agreement if f.source == "ai/consensus" else None,
    )


def model(info: ModelInfo, available: bool) -> ModelOut:
    return ModelOut(
        id=info.id,
        context=info.context_window,
        max_out=info.max_output,
        in_usd_mtok=info.input_per_mtok,
        out_usd_mtok=info.output_per_mtok,
        caps=[c.value for c in sorted(info.capabilities)],
        quality=info.quality,
        available=available,
    )


def models(entries: Iterable[tuple[ModelInfo, bool]]) -> ModelsOut:
    return ModelsOut(models=[model(info, ok) for info, ok in entries])
