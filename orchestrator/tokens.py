"""Token counting and trimming, offline.

tiktoken downloads its BPE files at first use; we ship cl100k_base with the package and
build the `Encoding` from that file, so counting works with no network. For Anthropic
and Gemini models the count is an estimate: providers' own usage figures win for cost.
"""

from __future__ import annotations

from functools import cached_property
from importlib import resources
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import tiktoken

_CL100K_HASH = "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7"
_CL100K_PATTERN = r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+|\s++$|\s*[\r\n]|\s+(?!\S)|\s"""
_SPECIAL = {
    "<|endoftext|>": 100257,
    "<|fim_prefix|>": 100258,
    "<|fim_middle|>": 100259,
    "<|fim_suffix|>": 100260,
    "<|endofprompt|>": 100276,
}
# Chat formats wrap each message in a few tokens of their own (role, separators).
MESSAGE_OVERHEAD = 4
TRIM_MARKER = "\n… [trimmed] …\n"


class TokenCounter:
    """Counts and trims text in cl100k tokens. Loading the encoding costs ~100 ms, so it
    happens on first use, not at import or construction."""

    @cached_property
    def encoding(self) -> tiktoken.Encoding:
        import tiktoken
        from tiktoken.load import load_tiktoken_bpe

        path = resources.files("orchestrator") / "data" / "cl100k_base.tiktoken"
        with resources.as_file(path) as real_path:
            ranks = load_tiktoken_bpe(str(real_path), expected_hash=_CL100K_HASH)
        return tiktoken.Encoding(
            name="cl100k_base", pat_str=_CL100K_PATTERN, mergeable_ranks=ranks, special_tokens=_SPECIAL
        )

    def count(self, text: str) -> int:
        if not text:
            return 0
        # disallowed_special=() so that user text containing "<|endoftext|>" is counted as text.
        return len(self.encoding.encode(text, disallowed_special=()))

    def estimate(self, text: str) -> int:
        """A count for budgeting: exact for long text; for short text, an upper bound from its
        length (cl100k averages ~4 characters a token on code and prose), without encoding."""
        if len(text) <= 512:
            return (len(text) + 2) // 3
        return self.count(text)

    def count_messages(self, messages: list[tuple[str, str]]) -> int:
        """Tokens of a chat prompt given as (role, content) pairs (short messages estimated)."""
        return sum(MESSAGE_OVERHEAD + self.estimate(content) for _role, content in messages) + 3

    def trim_to_budget(self, text: str, budget: int, *, keep: str = "head", marker: str = TRIM_MARKER) -> str:
        """Cut `text` to at most `budget` tokens, on line boundaries where possible.

        keep="head" keeps the beginning, "tail" the end, "middle" drops the middle and
        keeps both ends (what a reader of code needs most: the signature and the end).
        The marker shows where text was removed; it counts against the budget.
        """
        if budget <= 0:
            return ""
        tokens = self.encoding.encode(text, disallowed_special=())
        if len(tokens) <= budget:
            return text
        if keep not in ("head", "tail", "middle"):
            raise ValueError(f"keep must be 'head', 'tail' or 'middle', not {keep!r}")
        room = budget - self.count(marker)
        if room <= 0:
            return self.encoding.decode(tokens[:budget]) if keep != "tail" else self.encoding.decode(tokens[-budget:])
        # Re-joining pieces can merge or split tokens at the seams: shrink until it fits.
        while True:
            trimmed = self._cut(tokens, room, keep, marker)
            if self.count(trimmed) <= budget or room <= 1:
                return trimmed
            room -= max(1, room // 50)

    def _cut(self, tokens: list[int], room: int, keep: str, marker: str) -> str:
        if keep == "head":
            kept = _to_line_end(self.encoding.decode(tokens[:room]), head=True)
            return kept + marker.rstrip("\n")
        if keep == "middle":
            head = _to_line_end(self.encoding.decode(tokens[: room // 2]), head=True)
            tail = _to_line_end(self.encoding.decode(tokens[len(tokens) - (room - room // 2) :]), head=False)
            return head + marker + tail
        return marker.lstrip("\n") + _to_line_end(self.encoding.decode(tokens[-room:]), head=False)


def _to_line_end(fragment: str, *, head: bool) -> str:
    """Drop a partial line at the cut, unless that would drop everything."""
    if head:
        cut = fragment.rfind("\n")
        return fragment[:cut] if cut > 0 else fragment
    cut = fragment.find("\n")
    return fragment[cut + 1 :] if 0 <= cut < len(fragment) - 1 else fragment
