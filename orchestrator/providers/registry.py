"""Providers built from settings: one object per configured provider, sharing one pool."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import ProviderNotConfigured
from ..settings import PROVIDER_ALIASES, PROVIDERS, Settings
from .anthropic import AnthropicProvider
from .base import HttpClients, HTTPProvider
from .gemini import GeminiProvider
from .openai import OpenAIProvider

if TYPE_CHECKING:
    from ..catalog import Catalog
    from ..tokens import TokenCounter

_CLASSES: dict[str, type[HTTPProvider]] = {
    "openai": OpenAIProvider,
    "openrouter": OpenAIProvider,
    "ollama": OpenAIProvider,
    "anthropic": AnthropicProvider,
    "gemini": GeminiProvider,
}
_KEY_ENV = {
    "openai": "OPENAI_API_KEY",
    "anthropic": "ANTHROPIC_API_KEY",
    "gemini": "GEMINI_API_KEY",
    "openrouter": "OPENROUTER_API_KEY",
}


def how_to_configure(provider: str | None = None) -> str:
    """What a user must set, for one provider or for any."""
    if provider == "ollama":
        return "set LOCAL_MODEL_ENABLED=true (and LOCAL_MODEL_ENDPOINT if not http://localhost:11434/v1)"
    if provider in _KEY_ENV:
        return (
            f"set {_KEY_ENV[provider]} in the environment, or api_key under [providers.{provider}] "
            "in ~/.config/orchestrator/config.toml"
        )
    keys = ", ".join(_KEY_ENV.values())
    return (
        f"set one of {keys} (or LOCAL_MODEL_ENABLED=true for a local Ollama-compatible server), "
        "or the same under [providers.<name>] api_key in ~/.config/orchestrator/config.toml; "
        "`orchestrator config` shows what is set"
    )


class Providers:
    def __init__(self, settings: Settings, *, catalog: Catalog | None = None, counter: TokenCounter | None = None):
        self.settings = settings
        self.http = HttpClients(connect_timeout=settings.timeouts.connect, read_timeout=settings.timeouts.read)
        self._catalog = catalog
        self._counter = counter
        self._built: dict[str, HTTPProvider] = {}

    def configured(self) -> list[str]:
        return self.settings.configured_providers()

    def get(self, name: str) -> HTTPProvider:
        name = PROVIDER_ALIASES.get(name, name)
        if name not in PROVIDERS:
            raise ProviderNotConfigured(f"unknown provider {name!r}; known: {', '.join(PROVIDERS)}")
        if name not in self.configured():
            raise ProviderNotConfigured(f"provider {name!r} is not configured: {how_to_configure(name)}")
        provider = self._built.get(name)
        if provider is None:
            conf = self.settings.providers[name]
            provider = _CLASSES[name](
                name,
                base_url=self.settings.base_url(name),
                api_key=conf.api_key.get_secret_value() if conf.api_key else None,
                http=self.http,
                catalog=self._catalog,
                counter=self._counter,
                headers=conf.headers,
            )
            self._built[name] = provider
        return provider

    async def close(self) -> None:
        await self.http.close()
