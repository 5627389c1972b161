"""Inline completion (LSP 3.18 `textDocument/inlineCompletion`): ghost text from a
fill-in-the-middle call with the text before and after the cursor.

- The core trims prefix and suffix to its token budget; we cut them to a bounded number of
  characters first, so a 10 MB file costs no more than a small one.
- A request the client cancels cancels the upstream HTTP call at once (pygls cancels the
  handler's task, and the call is awaited inside it); so does a newer request for the same
  document, which answers the older one with nothing.
- Answers are remembered by the text before the cursor: typing on into a remembered
  completion is answered at once with the rest of it, and no model is asked.
- Accepting an item runs `orchestrator.acceptCompletion`, which records the acceptance in
  the ledger.
"""

from __future__ import annotations

import asyncio
import itertools
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from lsprotocol import types
from pygls.exceptions import JsonRpcInvalidParams

from .positions import offset_at
from .protocol import rpc

if TYPE_CHECKING:
    from .server import OrchestratorServer

ACCEPT = "orchestrator.acceptCompletion"
# Characters kept around the cursor before the core trims by tokens (budget 3,000 tokens, 3/4
# before the cursor): 8 characters a token covers even whitespace-heavy code.
PREFIX_CHARS = 18_000
SUFFIX_CHARS = 6_000
_TAIL = 256  # characters of the prefix a remembered completion is recognized by
_REMEMBERED = 64


@dataclass(frozen=True)
class Remembered:
    uri: str
    offset: int  # where the completion was asked for
    tail: str  # the text just before that point
    suffix: str  # the text just after it (its start)
    text: str
    model: str


class InlineCompletions:
    def __init__(self, ls: OrchestratorServer):
        self.ls = ls
        self.remembered: deque[Remembered] = deque(maxlen=_REMEMBERED)
        self.upstream: dict[str, asyncio.Future[Any]] = {}
        self.latest: dict[str, int] = {}  # the newest request per document
        self._tickets = itertools.count(1)

    def recall(self, uri: str, text: str, offset: int) -> Remembered | None:
        """A remembered completion that the text typed since it was given continues."""
        for entry in reversed(self.remembered):
            if entry.uri != uri or not entry.offset <= offset < entry.offset + len(entry.text):
                continue
            typed = text[entry.offset : offset]
            if not entry.text.startswith(typed):
                continue
            if text[max(0, entry.offset - _TAIL) : entry.offset] != entry.tail:
                continue
            if not text.startswith(entry.suffix, offset):
                continue
            return entry
        return None

    async def complete(self, params: types.InlineCompletionParams) -> types.InlineCompletionList:
        uri = params.text_document.uri
        doc = self.ls.document(uri)
        ticket = self.latest[uri] = next(self._tickets)
        config = self.ls.config
        empty = types.InlineCompletionList(items=[])
        if not config.inline_enabled:
            return empty
        text = doc.source
        offset = offset_at(text, params.position, self.ls.encoding)
        suffix_head = text[offset : offset + 64]
        hit = self.recall(uri, text, offset)
        if hit is not None:
            rest = hit.text[offset - hit.offset :]
            return types.InlineCompletionList(items=[self._item(params.position, rest, hit.model, uri, cached=True)])
        if "\x00" in text[max(0, offset - PREFIX_CHARS) : offset + SUFFIX_CHARS]:
            return empty  # binary: nothing sensible to complete
        orch = await self.ls.orchestrator()
        if self.latest.get(uri) != ticket:
            return empty  # a newer request came while the core was starting
        call = asyncio.ensure_future(
            orch.complete(
                text[max(0, offset - PREFIX_CHARS) : offset],
                text[offset : offset + SUFFIX_CHARS],
                document=self.ls.core_document(doc, text=""),  # its language is all `complete` reads
                profile=config.inline_profile,
                max_tokens=config.inline_max_tokens,
                front_end="lsp",
            )
        )
        older = self.upstream.get(uri)
        if older is not None and not older.done():
            older.cancel()  # superseded: its HTTP call is closed now, not when it would have ended
        self.upstream[uri] = call
        try:
            completion = await call
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if call.cancelled() and current is not None and not current.cancelling():
                return empty  # a newer request took over; this one is answered, with nothing
            raise
        finally:
            if self.upstream.get(uri) is call:
                del self.upstream[uri]
        self.ls.status.changed()
        if not completion.text.strip():
            return empty
        tail = text[max(0, offset - _TAIL) : offset]
        self.remembered.append(Remembered(uri, offset, tail, suffix_head, completion.text, completion.model))
        return types.InlineCompletionList(items=[self._item(params.position, completion.text, completion.model, uri)])

    def _item(
        self, position: types.Position, text: str, model: str, uri: str, *, cached: bool = False
    ) -> types.InlineCompletionItem:
        return types.InlineCompletionItem(
            insert_text=text,
            range=types.Range(start=position, end=position),
            command=types.Command(
                title="Accept completion",
                command=ACCEPT,
                arguments=[{"uri": uri, "model": model, "chars": len(text), "remembered": cached}],
            ),
        )

    async def accepted(self, args: dict[str, Any]) -> dict[str, Any]:
        from orchestrator.ledger import CallRecord

        model = args.get("model")
        if not isinstance(model, str) or "/" not in model:
            raise JsonRpcInvalidParams(f"{ACCEPT} expects {{model, chars}} from the completion item")
        chars = args.get("chars")
        orch = await self.ls.orchestrator()
        info = orch.catalog.get(model) if model in orch.catalog else None
        await orch.ledger.record(
            CallRecord(
                front_end="lsp",
                task="completion_accepted",
                provider=info.provider if info else model.split("/", 1)[0],
                model=model,
                output_tokens=0,
                outcome="accepted",
                reason=f"{chars} characters accepted" if isinstance(chars, int) else "accepted",
            )
        )
        self.ls.status.changed()
        return {"recorded": True}


def register(ls: OrchestratorServer) -> None:
    completions = ls.completions = InlineCompletions(ls)

    @ls.feature(types.TEXT_DOCUMENT_INLINE_COMPLETION, types.InlineCompletionOptions())
    @rpc
    async def inline_completion(params: types.InlineCompletionParams) -> types.InlineCompletionList:
        return await completions.complete(params)

    @ls.command(ACCEPT)
    @rpc
    async def accept(*args: Any) -> dict[str, Any]:
        if not args or not isinstance(args[0], dict):
            raise JsonRpcInvalidParams(f"{ACCEPT} expects one object: the item's command arguments")
        return await completions.accepted(args[0])
