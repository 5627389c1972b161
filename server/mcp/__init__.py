"""The MCP front end: the orchestrator's tools, resources and prompts for agent clients.

`create_server()` builds the `MCPServer`; `serve_stdio` and `serve_http` run it.
"""

from .app import create_server
from .transport import serve_http, serve_stdio

__all__ = ["create_server", "serve_http", "serve_stdio"]
