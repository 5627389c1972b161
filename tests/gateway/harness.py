"""The HTTP gateway under test: a real uvicorn server on 127.0.0.1 (a free port), in the
test's own event loop, over an `Orchestrator` whose providers all point at the fake
provider server. Tests talk to it as real clients do: the `openai` package and httpx.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import openai

from orchestrator.core import Orchestrator
from orchestrator.settings import Settings
from server.http.app import DEFAULT_MAX_BODY, GatewayConfig, create_app
from server.http.auth import KeyStore, keys_path
from server.http.serving import Server, bind
from tests.fakes.facade import make_settings
from tests.fakes.provider_server import FakeProviderServer

PROVIDER_KEY = "sk-test-" + "Qx9" * 10
START_TIMEOUT = 10.0


@dataclass
class Gateway:
    url: str
    orch: Orchestrator
    key: str | None
    fake: FakeProviderServer
    app: Any

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"} if self.key else {}

    def http(self, headers: dict[str, str] | None = None) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.url, headers={**self.headers(), **(headers or {})}, timeout=30.0)

    def openai(self, key: str | None = None) -> openai.AsyncOpenAI:
        return openai.AsyncOpenAI(
            base_url=self.url + "/v1", api_key=key or self.key or "unused", max_retries=0, timeout=30.0
        )


@asynccontextmanager
async def serve(
    fake: FakeProviderServer,
    tmp_path: Path,
    *,
    auth: bool = True,
    cors: Sequence[str] = (),
    max_body: int = DEFAULT_MAX_BODY,
    settings: Settings | None = None,
    **env: str,
) -> AsyncIterator[Gateway]:
    settings = settings or make_settings(fake, tmp_path, key=PROVIDER_KEY, **env)
    keys_file = keys_path(settings.data_dir)
    key = None
    if auth:
        with KeyStore(keys_file) as store:
            key = store.create("tests")
    orch = await Orchestrator.create(settings, front_end="http")
    app = create_app(orch, GatewayConfig(auth=auth, keys_file=keys_file, cors_origins=list(cors), max_body=max_body))
    server = Server(app, bind("127.0.0.1", 0), handle_signals=False)
    serving = asyncio.create_task(server.run_until_stopped())
    ready = asyncio.create_task(server.ready.wait())
    try:
        done, _ = await asyncio.wait((serving, ready), timeout=START_TIMEOUT, return_when=asyncio.FIRST_COMPLETED)
        if ready not in done:
            raise RuntimeError(f"the gateway did not start within {START_TIMEOUT}s")
        yield Gateway(url=server.url, orch=orch, key=key, fake=fake, app=app)
    finally:
        ready.cancel()
        server.should_exit = True
        await asyncio.wait_for(serving, START_TIMEOUT)
        if app.state.keys is not None:
            app.state.keys.close()
        await orch.close()
        server.sock.close()
