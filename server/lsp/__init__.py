"""The language server front end: `orchestrator lsp` (stdio, or `--tcp HOST:PORT`).

One feature per module, each registering its handlers (`register(ls)`), as in pygls'
examples: diagnostics, code_actions, inline_completion, chat, commands, config, status;
`server` holds what they share and `positions` converts between the client's position
encoding and the core's code points. The server translates; the logic is in the core.
Nothing here imports the core at import time: it is built after `initialize` is answered.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .server import OrchestratorServer

__all__ = ["create_server"]


def create_server() -> OrchestratorServer:
    from .server import create_server as create

    return create()
