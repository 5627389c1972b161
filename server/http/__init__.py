"""The HTTP gateway: an OpenAI-compatible API, the `/api/ai/` contract, metrics and a usage
page, over the same `Orchestrator` as the other front ends. `orchestrator serve` runs it.

    app = create_app(orch, GatewayConfig(auth=True, keys_file=keys_path(settings.data_dir)))
"""

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .app import GatewayConfig, create_app
    from .auth import KeyStore, keys_path

__all__ = ["GatewayConfig", "KeyStore", "create_app", "keys_path"]


def __getattr__(name: str) -> object:
    # Lazy: `orchestrator keys` needs the key table, not Starlette and the whole core.
    if name in ("GatewayConfig", "create_app"):
        from . import app

        return getattr(app, name)
    if name in ("KeyStore", "keys_path"):
        from . import auth

        return getattr(auth, name)
    raise AttributeError(f"module 'server.http' has no attribute {name!r}")
