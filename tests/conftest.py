from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.fakes.provider_server import FakeProviderServer


@pytest.fixture
async def fake_provider() -> AsyncIterator[FakeProviderServer]:
    """The loopback model server: the only model the suite ever talks to."""
    async with FakeProviderServer() as server:
        yield server
