"""Chat over `workspace/executeCommand`.

`orchestrator.chat` takes one object: `message` (required), `document` (an open URI),
`range`, `profile`, `model`, `conversationId`. The answer streams as `orchestrator/chatChunk`
notifications `{conversationId, index, delta}` and ends with `orchestrator/chatDone`
`{conversationId, model, usage, costUsd, reason, ...}`, also shown as work-done progress.
The command's response is the same summary plus the whole text. Cancelling the request (or
the progress) stops the upstream stream at once; `chatDone` then says `cancelled`.

Conversations persist in the core's SQLite store: `orchestrator.conversations` lists them,
`orchestrator.conversation` returns one, and passing a `conversationId` continues it.
"""

from __future__ import annotations

import asyncio
from contextlib import aclosing
from typing import TYPE_CHECKING, Any

from lsprotocol import types
from pygls.exceptions import JsonRpcInvalidParams

from .config import PROFILES
from .positions import range_from_client, split_lines
from .protocol import COMMAND_PARAMS, json_range, rpc

if TYPE_CHECKING:
    from .server import OrchestratorServer

CHUNK = "orchestrator/chatChunk"
DONE = "orchestrator/chatDone"


class Chats:
    def __init__(self, ls: OrchestratorServer):
        self.ls = ls

    async def chat(self, args: dict[str, Any], token: types.ProgressToken | None) -> dict[str, Any]:
        from orchestrator.types import Message, Range

        message = args.get("message")
        if not isinstance(message, str) or not message.strip():
            raise JsonRpcInvalidParams("orchestrator.chat needs a non-empty 'message'")
        profile = args.get("profile") or self.ls.profile
        if profile is not None and profile not in PROFILES:
            raise JsonRpcInvalidParams(f"unknown profile {profile!r}; expected one of {', '.join(PROFILES)}")
        model = args.get("model")
        if model is not None and not isinstance(model, str):
            raise JsonRpcInvalidParams("'model' must be a catalog id such as openai/gpt-6.1-terra")
        document = selection = None
        if args.get("document") is not None:
            doc = self.ls.document(args["document"])
            self.ls.check(doc)
            document = self.ls.core_document(doc)
            if args.get("range") is not None:
                lines = split_lines(doc.source)
                selection = Range.of(*range_from_client(lines, json_range(args["range"]), self.ls.encoding))
        orch = await self.ls.orchestrator()
        cid = args.get("conversationId")
        if cid is None:
            cid = await orch.conversations.create(message, front_end="lsp")
        elif not isinstance(cid, str):
            raise JsonRpcInvalidParams("'conversationId' must be a string from an earlier chat")
        else:
            await orch.conversations.get(cid)  # an unknown id is an error before any model is asked
        stream = await orch.chat(
            [Message(role="user", content=message)],
            document=document,
            selection=selection,
            profile=profile,
            model=model,
            conversation_id=cid,
            front_end="lsp",
        )
        index = 0
        done: dict[str, Any] = {"conversationId": cid}
        try:
            async with (
                self.ls.progress("Orchestrator chat", token=token, cancellable=True) as report,
                aclosing(stream),
            ):
                async for chunk in stream:
                    if not chunk.text:
                        continue
                    if index == 0:
                        report(f"answering with {stream.state.model}")
                    self.ls.notify(CHUNK, {"conversationId": cid, "index": index, "delta": chunk.text})
                    index += 1
        except asyncio.CancelledError:
            self.ls.notify(DONE, {**done, **_summary(stream.state), "chunks": index, "cancelled": True})
            self.ls.status.changed()
            raise
        except Exception as exc:
            self.ls.notify(DONE, {**done, **_summary(stream.state), "chunks": index, "error": str(exc)})
            self.ls.status.changed()
            raise
        done.update(_summary(stream.state), chunks=index)
        self.ls.notify(DONE, done)
        self.ls.status.changed()
        return {**done, "text": "".join(stream.state.parts)}


def _summary(state: Any) -> dict[str, Any]:
    usage = state.usage
    return {
        "model": state.model,
        "reason": state.reason,
        "usage": {
            "inputTokens": usage.input_tokens if usage else 0,
            "outputTokens": usage.output_tokens if usage else 0,
            "estimated": bool(usage.estimated) if usage else True,
        },
        "costUsd": usage.cost_usd if usage else 0.0,
        "cached": state.cached,
        "incomplete": state.incomplete,
    }


def register(ls: OrchestratorServer) -> None:
    chats = ls.chats = Chats(ls)

    @ls.command("orchestrator.chat")
    @rpc
    async def chat(*args: Any) -> dict[str, Any]:
        if len(args) != 1 or not isinstance(args[0], dict):
            raise JsonRpcInvalidParams("orchestrator.chat expects one object: {message, document?, range?, ...}")
        params = COMMAND_PARAMS.get()
        return await chats.chat(args[0], params.work_done_token if params is not None else None)

    @ls.command("orchestrator.conversations")
    @rpc
    async def conversations(*args: Any) -> list[dict[str, Any]]:
        limit = args[0].get("limit", 50) if args and isinstance(args[0], dict) else 50
        if not isinstance(limit, int) or isinstance(limit, bool):
            raise JsonRpcInvalidParams("'limit' must be a whole number")
        orch = await ls.orchestrator()
        return [_camel(c.model_dump()) for c in await orch.conversations.list(limit)]

    @ls.command("orchestrator.conversation")
    @rpc
    async def conversation(*args: Any) -> dict[str, Any]:
        cid = args[0].get("conversationId") if args and isinstance(args[0], dict) else None
        if not isinstance(cid, str):
            raise JsonRpcInvalidParams("orchestrator.conversation expects {conversationId}")
        orch = await ls.orchestrator()
        return _camel((await orch.conversations.get(cid)).model_dump())


def _camel(data: Any) -> Any:
    if isinstance(data, dict):
        return {_camel_key(k): _camel(v) for k, v in data.items()}
    if isinstance(data, list):
        return [_camel(v) for v in data]
    return data


def _camel_key(key: str) -> str:
    head, *rest = key.split("_")
    return head + "".join(part.title() for part in rest)
