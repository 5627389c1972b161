"""Running the server: stdio (the default), or streamable HTTP behind an optional bearer token.

Over HTTP the endpoint is `/mcp`. On a loopback host the SDK also checks `Host` and
`Origin` (DNS rebinding); anywhere else, set a token.
"""

from __future__ import annotations

import hmac
import logging
import socket
import sys
from typing import Any

from mcp.server.mcpserver import MCPServer

log = logging.getLogger(__name__)
PATH = "/mcp"
LOOPBACK = ("127.0.0.1", "localhost", "::1")


async def serve_stdio(server: MCPServer[Any]) -> None:
    await server.run_stdio_async()


async def serve_http(server: MCPServer[Any], host: str, port: int, token: str | None = None) -> None:
    """Serve until cancelled; prints `listening on URL` to stderr once requests are accepted."""
    import uvicorn

    app: Any = server.streamable_http_app(streamable_http_path=PATH, host=host)
    if token:
        app = BearerAuth(app, token)
    elif host not in LOOPBACK:
        log.warning("serving on %s without a token: anyone who can reach it can spend your budget", host)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(128)
    bound = sock.getsockname()[1]
    shown = f"[{host}]" if family == socket.AF_INET6 else host
    config = uvicorn.Config(app, log_config=None, access_log=False, lifespan="on", timeout_graceful_shutdown=5)
    await _Server(config, f"http://{shown}:{bound}{PATH}").serve(sockets=[sock])


class _Server:
    """uvicorn's server, announcing the URL once it accepts connections."""

    def __new__(cls, config: Any, url: str) -> Any:
        import uvicorn

        class Announcing(uvicorn.Server):
            async def startup(self, sockets: list[socket.socket] | None = None) -> None:
                await super().startup(sockets)
                if self.started:
                    print(f"orchestrator mcp: listening on {url}", file=sys.stderr, flush=True)

        return Announcing(config)


class BearerAuth:
    """ASGI middleware: HTTP requests need `Authorization: Bearer <token>`; lifespan passes through."""

    def __init__(self, app: Any, token: str):
        self.app = app
        self._expected = f"Bearer {token}".encode()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            given = dict(scope.get("headers") or ()).get(b"authorization", b"")
            if not hmac.compare_digest(given, self._expected):
                await send(
                    {
                        "type": "http.response.start",
                        "status": 401,
                        "headers": [(b"content-type", b"application/json"), (b"www-authenticate", b"Bearer")],
                    }
                )
                await send({"type": "http.response.body", "body": b'{"error":"invalid_token"}'})
                return
        await self.app(scope, receive, send)
