"""Serving the app with uvicorn on a socket we bind ourselves (port 0 works: the OS picks
one, and `url` says which), with an event set once it accepts connections."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
import threading
from collections.abc import Iterator

import uvicorn
from starlette.types import ASGIApp

SHUTDOWN_GRACE = 5.0  # seconds for streams in flight before they are cut


def bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto given explicitly: asyncio sets TCP_NODELAY on accepted sockets only when proto is
    # IPPROTO_TCP, and without it every keep-alive response waits ~40 ms for a delayed ACK.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


class Server(uvicorn.Server):
    def __init__(
        self,
        app: ASGIApp,
        sock: socket.socket,
        *,
        access_log: bool = False,
        log_level: str = "warning",
        handle_signals: bool = True,
    ):
        config = uvicorn.Config(
            app,
            lifespan="off",  # the orchestrator's life is managed by whoever built the app
            ws="none",  # no websocket routes; and the websockets package warns on import
            access_log=access_log,
            log_level=log_level,
            timeout_graceful_shutdown=SHUTDOWN_GRACE,
            server_header=False,
        )
        super().__init__(config)
        self.sock = sock
        self.ready = asyncio.Event()
        self._handle_signals = handle_signals

    @property
    def url(self) -> str:
        host, port = self.sock.getsockname()[:2]
        return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started:
            self.ready.set()

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        """SIGINT/SIGTERM start a graceful shutdown, and `serve` then returns.

        uvicorn's own version re-raises the signal once it has shut down, which would end the
        process before its caller closed the orchestrator (the ledger, the provider pools).
        """
        if not self._handle_signals or threading.current_thread() is not threading.main_thread():
            yield
            return
        loop = asyncio.get_running_loop()
        signals = (signal.SIGINT, signal.SIGTERM)
        for sig in signals:
            loop.add_signal_handler(sig, self.handle_exit, sig, None)
        try:
            yield
        finally:
            for sig in signals:
                loop.remove_signal_handler(sig)

    async def run_until_stopped(self) -> None:
        await self.serve(sockets=[self.sock])
