"""The MCP server: the tools, resources and prompts on one `MCPServer`, and the lifespan that
owns the facade.

    server = create_server()                              # facade from load_settings(), in the lifespan
    server = create_server(settings=s, roots=["/repo"])   # tests: settings pointing at the fake provider
    server = create_server(orchestrator=orch)             # a facade the caller opened (and closes)
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.tools import Tool
from mcp_types import ToolAnnotations

from orchestrator import __version__
from orchestrator.core import Orchestrator
from orchestrator.settings import Settings, load_settings

from . import prompts, reports, resources, review, tools
from .paths import default_roots
from .schema import compact, inline_defs
from .state import AppState

NAME = "orchestrator"
FRONT_END = "mcp"
INSTRUCTIONS = (
    "Code analysis, review, fixes and questions answered by many AI models, with routing, fallback and a "
    "cost ledger. Files must be inside the client's roots. fix returns a diff and never writes."
)
READ_ONLY = ToolAnnotations(read_only_hint=True)


def create_server(
    *,
    orchestrator: Orchestrator | None = None,
    settings: Settings | None = None,
    roots: Sequence[str | os.PathLike[str]] | None = None,
) -> MCPServer[AppState]:
    """The server; its lifespan opens the facade (unless given one) and closes what it opened.

    `roots` are where tools may read when the client declares no roots (default: the
    working directory at start-up).
    """
    fallback = default_roots(roots)
    holder: list[AppState] = []

    @asynccontextmanager
    async def lifespan(_server: MCPServer[AppState]) -> AsyncIterator[AppState]:
        if orchestrator is not None:
            state = AppState(orchestrator, fallback)
            holder.append(state)
            try:
                yield state
            finally:
                holder.remove(state)
            return
        orch = await Orchestrator.create(settings or load_settings(), front_end=FRONT_END)
        state = AppState(orch, fallback)
        holder.append(state)
        try:
            yield state
        finally:
            holder.remove(state)
            await orch.close()

    def current() -> Orchestrator:
        if not holder:
            raise RuntimeError("the orchestrator MCP server is not running")
        return holder[-1].orch

    server: MCPServer[AppState] = MCPServer(
        NAME,
        version=__version__,
        instructions=INSTRUCTIONS,
        lifespan=lifespan,
        tools=[_tool(fn) for fn in (*tools.TOOLS, *review.TOOLS, *reports.TOOLS)],
    )
    resources.register(server, current)
    prompts.register(server)
    return server


def _tool(fn: Callable[..., Any]) -> Tool:
    tool = Tool.from_function(fn, annotations=READ_ONLY)
    # Short schemas: clients send them to their model on every turn.
    tool.parameters = compact(tool.parameters, result=False)
    if tool.fn_metadata.output_schema is not None:
        tool.fn_metadata.output_schema = inline_defs(compact(tool.fn_metadata.output_schema))
    return tool
