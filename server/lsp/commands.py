"""Commands (`workspace/executeCommand`), each taking one JSON object:

- `orchestrator.analyze` `{uri, range?, kinds?, profile?}`: AI analysis now, whatever
  `aiDiagnostics` says; its findings join the AI diagnostics; answers a summary.
- `orchestrator.explain` `{uri, range?}`: an explanation, shown and returned.
- `orchestrator.setProfile` `{profile}` (or the bare string): the profile of later calls.
- `orchestrator.usage` `{period?, by?}`: the ledger's summary and the budget.
- `orchestrator.models` `{}`: the catalog, and which models can be called now.

`orchestrator.chat`, `orchestrator.conversations`, `orchestrator.conversation` live in
chat.py; `orchestrator.acceptCompletion` in inline_completion.py; `orchestrator.applyAction`
in code_actions.py. An unknown command is an error response (pygls: InvalidParams).

Handlers take `*args: Any`. pygls passes the server itself to a handler whose first
parameter is named `ls` or annotated with a class the server is an instance of (`object`
would be one); ours get the server from their closure instead.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lsprotocol import types
from pygls.exceptions import JsonRpcInvalidParams, JsonRpcInvalidRequest

from .config import KINDS, PROFILES
from .positions import range_from_client, split_lines
from .protocol import json_range, rpc

if TYPE_CHECKING:
    from .server import OrchestratorServer


def _one_object(name: str, args: tuple[object, ...], *, optional: bool = False) -> dict[str, Any]:
    if not args and optional:
        return {}
    if len(args) == 1 and isinstance(args[0], dict):
        return args[0]
    raise JsonRpcInvalidParams(f"{name} expects one object as its argument")


def register(ls: OrchestratorServer) -> None:
    @ls.command("orchestrator.analyze")
    @rpc
    async def analyze(*args: Any) -> dict[str, Any]:
        spec = _one_object("orchestrator.analyze", args)
        if ls.ai_mode == "off":
            raise JsonRpcInvalidRequest("AI analysis is off: set orchestrator.aiDiagnostics to save or command")
        uri = spec.get("uri")
        kinds = spec.get("kinds")
        if kinds is not None and (not isinstance(kinds, list) or any(k not in KINDS for k in kinds) or not kinds):
            raise JsonRpcInvalidParams(f"'kinds' must be a non-empty list of: {', '.join(KINDS)}")
        profile = spec.get("profile")
        if profile is not None and profile not in PROFILES:
            raise JsonRpcInvalidParams(f"unknown profile {profile!r}; expected one of {', '.join(PROFILES)}")
        selection = json_range(spec["range"]) if spec.get("range") is not None else None
        return await ls.diagnostics.run_ai(str(uri or ""), selection, kinds, profile)

    @ls.command("orchestrator.explain")
    @rpc
    async def explain(*args: Any) -> dict[str, Any]:
        from orchestrator.types import Range

        spec = _one_object("orchestrator.explain", args)
        doc = ls.document(str(spec.get("uri") or ""))
        ls.check(doc)
        selection = None
        if spec.get("range") is not None:
            lines = split_lines(doc.source)
            selection = Range.of(*range_from_client(lines, json_range(spec["range"]), ls.encoding))
        orch = await ls.orchestrator()
        core_doc = ls.core_document(doc)
        async with ls.progress("Explaining with AI", cancellable=True):
            result = await orch.explain(core_doc, selection, profile=ls.profile, front_end="lsp")
        ls.status.changed()
        ls.show(result.text, types.MessageType.Info)
        return {"text": result.text, "model": result.model, "costUsd": result.usage.cost_usd, "reason": result.reason}

    @ls.command("orchestrator.setProfile")
    @rpc
    async def set_profile(*args: Any) -> dict[str, Any]:
        profile = args[0] if len(args) == 1 and isinstance(args[0], str) else None
        if profile is None and len(args) == 1 and isinstance(args[0], dict):
            profile = args[0].get("profile")
        if profile not in PROFILES:
            raise JsonRpcInvalidParams(f"orchestrator.setProfile expects one of: {', '.join(PROFILES)}")
        ls.profile_override = str(profile)
        ls.status.changed()
        return {"profile": profile}

    @ls.command("orchestrator.usage")
    @rpc
    async def usage(*args: Any) -> dict[str, Any]:
        spec = _one_object("orchestrator.usage", args, optional=True)
        orch = await ls.orchestrator()
        rows, budget = await orch.usage(period=spec.get("period", "month"), by=spec.get("by", "provider"))
        return {
            "rows": [_camel(r.model_dump()) for r in rows],
            "budget": _camel(budget.model_dump()),
        }

    @ls.command("orchestrator.models")
    @rpc
    async def models(*args: Any) -> list[dict[str, Any]]:
        _one_object("orchestrator.models", args, optional=True)
        orch = await ls.orchestrator()
        out = []
        for info, available in orch.models():
            out.append(
                {
                    "id": info.id,
                    "provider": info.provider,
                    "contextWindow": info.context_window,
                    "inputPerMtok": info.input_per_mtok,
                    "outputPerMtok": info.output_per_mtok,
                    "capabilities": sorted(str(getattr(c, "value", c)) for c in info.capabilities),
                    "available": available,
                }
            )
        return out


def _camel(data: dict[str, Any]) -> dict[str, Any]:
    return {k.split("_")[0] + "".join(p.title() for p in k.split("_")[1:]): v for k, v in data.items()}
