from __future__ import annotations

import textwrap

import pytest

from orchestrator.context import build_context, language_of
from orchestrator.tokens import TRIM_MARKER, TokenCounter
from orchestrator.types import Document, Range


@pytest.fixture(scope="module")
def counter() -> TokenCounter:
    return TokenCounter()


def test_counts_offline_with_the_shipped_encoding(counter: TokenCounter) -> None:
    # Known cl100k counts: these are what OpenAI's tokenizer gives.
    assert counter.count("hello world") == 2
    assert counter.count("") == 0
    assert counter.count("<|endoftext|>") > 1  # special tokens in user text are plain text
    assert counter.encoding.name == "cl100k_base"


CODE = "\n".join(f"value_{i} = compute({i}) + offset  # line {i}" for i in range(400))


@pytest.mark.parametrize("keep", ["head", "tail", "middle"])
def test_trim_to_budget_fits_and_keeps_the_right_end(counter: TokenCounter, keep: str) -> None:
    trimmed = counter.trim_to_budget(CODE, 120, keep=keep)
    assert counter.count(trimmed) <= 120
    assert TRIM_MARKER.strip() in trimmed
    lines = [line for line in trimmed.splitlines() if line.startswith("value_")]
    # Cuts fall on line boundaries: every kept line is a whole line of the original.
    assert all(line in CODE.splitlines() for line in lines)
    if keep in ("head", "middle"):
        assert lines[0] == "value_0 = compute(0) + offset  # line 0"
    if keep in ("tail", "middle"):
        assert lines[-1] == "value_399 = compute(399) + offset  # line 399"


def test_trim_leaves_short_text_alone(counter: TokenCounter) -> None:
    assert counter.trim_to_budget("short", 10) == "short"
    assert counter.trim_to_budget("short", 0) == ""
    with pytest.raises(ValueError, match="keep must be"):
        counter.trim_to_budget(CODE, 10, keep="sides")


SOURCE = textwrap.dedent(
    '''\
    import os
    from collections import deque

    LIMIT = 10


    def unrelated():
        return 1


    class Inventory:
        """Items on the shelves."""

        def __init__(self):
            self.items = deque()

        def restock(self, sku, qty):
            if qty <= 0:
                raise ValueError(qty)
            self.items.append((sku, qty))
            os.sync()
            return len(self.items)

        def clear(self):
            self.items.clear()
    '''
)


def test_context_for_a_selection_inside_a_method(counter: TokenCounter) -> None:
    doc = Document(path="inv.py", text=SOURCE, language="python")
    # Select `self.items.append((sku, qty))`, 0-based line 19.
    ctx = build_context(doc, Range.of(19, 8, 19, 36), counter=counter, max_tokens=4000, reserve_for_answer=500)
    assert ctx.enclosing == "function Inventory.restock"
    lines = ctx.text.splitlines()
    # The selection is marked with '>' and 1-based line numbers.
    assert ">20 |         self.items.append((sku, qty))" in lines
    # The enclosing method, the class line and the imports are there.
    assert " 17 |     def restock(self, sku, qty):" in lines
    assert " 11 | class Inventory:" in lines
    assert "  1 | import os" in lines and "  2 | from collections import deque" in lines
    assert ctx.tokens <= 3500


def test_context_trimmed_keeps_selection_signatures_then_imports(counter: TokenCounter) -> None:
    doc = Document(path="inv.py", text=SOURCE, language="python")
    ctx = build_context(doc, Range.of(19, 0, 20, 0), counter=counter, max_tokens=110, reserve_for_answer=40)
    assert ctx.trimmed
    assert ctx.tokens <= 70
    text = ctx.text
    assert ">20 |" in text and "def restock" in text and "class Inventory" in text
    assert "def unrelated" not in text
    assert "…" in text  # gaps are marked


def test_context_budget_smaller_than_selection_keeps_what_fits(counter: TokenCounter) -> None:
    doc = Document(path="inv.py", text=SOURCE, language="python")
    ctx = build_context(doc, Range.of(0, 0, 25, 0), counter=counter, max_tokens=30)
    assert ctx.tokens <= 30 and ctx.trimmed


def test_context_without_selection_and_empty_document(counter: TokenCounter) -> None:
    doc = Document(path="inv.py", text=SOURCE, language="python")
    ctx = build_context(doc, None, counter=counter, max_tokens=4000)
    assert not ctx.trimmed and ctx.text.count("\n") == len(SOURCE.splitlines())
    empty = build_context(Document(path="e.py", text=""), None, counter=counter, max_tokens=100)
    assert empty.text == "" and empty.tokens == 0


def test_context_in_broken_python_uses_indentation(counter: TokenCounter) -> None:
    broken = SOURCE.replace("if qty <= 0:", "if qty <= 0")
    doc = Document(path="inv.py", text=broken, language="python")
    ctx = build_context(doc, Range.of(19, 8, 19, 36), counter=counter, max_tokens=4000)
    assert ctx.enclosing is not None and "restock" in ctx.enclosing
    assert " 11 | class Inventory:" in ctx.text.splitlines()


def test_context_in_a_brace_language(counter: TokenCounter) -> None:
    ts = textwrap.dedent(
        """\
        import { readFile } from "fs";

        export class Loader {
          private cache = new Map<string, string>();

          async load(path: string): Promise<string> {
            if (this.cache.has(path)) {
              return this.cache.get(path)!; // "}" in a comment
            }
            const text = await readFile(path, "utf8");
            return text;
          }
        }
        """
    )
    doc = Document(path="loader.ts", text=ts, language=language_of("loader.ts"))
    ctx = build_context(doc, Range.of(9, 0, 9, 10), counter=counter, max_tokens=4000, nearby_lines=0)
    assert ctx.enclosing == "function Loader.load"
    assert '1 | import { readFile } from "fs";' in ctx.text
    assert "3 | export class Loader {" in ctx.text
    assert "12 |   }" in ctx.text


def test_language_of() -> None:
    assert language_of("a/b.py") == "python"
    assert language_of("x.TSX") == "typescriptreact"
    assert language_of("Makefile") == "plaintext"
