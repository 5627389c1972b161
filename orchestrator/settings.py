"""Settings: one object built from layers, each value remembering where it came from.

Layers, in rising priority: built-in defaults, the user file
(`~/.config/orchestrator/config.toml`), the workspace file (`./orchestrator.toml`), the
environment, then what a front end passes (editor settings, tool arguments).
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, SecretStr, ValidationError, field_validator

from .errors import ConfigError
from .types import AnalysisKind, Profile

# Task types besides the analysis kinds (orchestrator.routing.Task mirrors these).
TASK_NAMES = ("chat", "completion", "explanation", "documentation", "code_generation", "refactoring", "testing", "fix")
PROVIDERS = ("openai", "anthropic", "gemini", "openrouter", "ollama")
# "local" is what users of the seed systems call the local OpenAI-compatible server.
PROVIDER_ALIASES = {"local": "ollama", "google": "gemini", "claude": "anthropic"}

DEFAULT_BASE_URLS = {
    "openai": "https://api.openai.com/v1",
    "anthropic": "https://api.anthropic.com",
    "gemini": "https://generativelanguage.googleapis.com",
    "openrouter": "https://openrouter.ai/api/v1",
    "ollama": "http://localhost:11434/v1",
}


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class ProviderSettings(_Section):
    api_key: SecretStr | None = None
    base_url: str | None = None
    default_model: str | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    enabled: bool = True

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^https?://[^\s/]+", value):
            raise ValueError(f"must be an http:// or https:// URL, got {value!r}")
        return value.rstrip("/") if value else value


class RoutingSettings(_Section):
    profile: Profile = Profile.BALANCED
    priority: list[str] = Field(default_factory=lambda: ["anthropic", "openai", "gemini", "openrouter", "ollama"])
    auto_fallback: bool = True
    cost_optimization: bool = True
    max_cost_per_request: float | None = Field(default=None, ge=0)
    consensus_models: int = Field(default=3, ge=2, le=8)
    # Preferred models (catalog ids or provider names) per analysis kind or task type.
    preferences: dict[str, list[str]] = Field(default_factory=dict)

    @field_validator("preferences")
    @classmethod
    def _known_tasks(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        allowed = {k.value for k in AnalysisKind} | set(TASK_NAMES)
        for key in value:
            if key not in allowed:
                raise ValueError(f"unknown task {key!r}; allowed: {', '.join(sorted(allowed))}")
        return value

    @field_validator("priority", mode="before")
    @classmethod
    def _known_providers(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = [p for p in (s.strip() for s in value.split(",")) if p]
        if isinstance(value, list):
            out = []
            for name in value:
                name = PROVIDER_ALIASES.get(str(name).lower(), str(name).lower())
                if name not in PROVIDERS:
                    raise ValueError(f"unknown provider {name!r}; allowed: {', '.join(PROVIDERS)} (or 'local')")
                if name not in out:
                    out.append(name)
            return out
        return value


class LocalSettings(_Section):
    enabled: bool = False
    endpoint: str = DEFAULT_BASE_URLS["ollama"]


class LimitSettings(_Section):
    requests_per_minute: int | None = Field(default=None, gt=0)
    tokens_per_minute: int | None = Field(default=None, gt=0)


class BudgetSettings(_Section):
    monthly_usd: float | None = Field(default=None, ge=0)


class TimeoutSettings(_Section):
    connect: float = Field(default=10.0, gt=0)
    read: float = Field(default=120.0, gt=0)


class ResilienceSettings(_Section):
    max_attempts: int = Field(default=3, ge=1, le=10)
    base_delay: float = Field(default=0.5, ge=0)
    max_delay: float = Field(default=8.0, ge=0)
    retry_after_cap: float = Field(default=20.0, ge=0)
    failure_threshold: int = Field(default=5, ge=1)
    cooldown: float = Field(default=30.0, ge=0)


class CacheSettings(_Section):
    enabled: bool = True
    ttl_seconds: int = Field(default=3600, ge=0)
    max_entries: int = Field(default=1000, ge=0)


class AnalysisSettings(_Section):
    kinds: list[AnalysisKind] = Field(default_factory=lambda: list(AnalysisKind))
    ai_mode: Literal["off", "save", "command"] = "save"
    max_complexity: int = Field(default=10, ge=1)
    max_function_lines: int = Field(default=60, ge=1)
    max_nesting: int = Field(default=4, ge=1)
    max_params: int = Field(default=5, ge=1)
    # Added to the project's own ruff configuration, never replacing it.
    ruff_extend_select: list[str] = Field(default_factory=lambda: ["E", "W", "F", "B", "UP", "SIM", "C4"])
    exclude: list[str] = Field(default_factory=list)


def _default_providers() -> dict[str, ProviderSettings]:
    return {name: ProviderSettings() for name in PROVIDERS}


class Settings(_Section):
    providers: dict[str, ProviderSettings] = Field(default_factory=_default_providers)
    routing: RoutingSettings = Field(default_factory=RoutingSettings)
    local: LocalSettings = Field(default_factory=LocalSettings)
    limits: LimitSettings = Field(default_factory=LimitSettings)
    budget: BudgetSettings = Field(default_factory=BudgetSettings)
    timeouts: TimeoutSettings = Field(default_factory=TimeoutSettings)
    resilience: ResilienceSettings = Field(default_factory=ResilienceSettings)
    cache: CacheSettings = Field(default_factory=CacheSettings)
    analysis: AnalysisSettings = Field(default_factory=AnalysisSettings)
    models: dict[str, dict[str, Any]] = Field(default_factory=dict)
    data_dir: str = ""
    _sources: dict[str, str] = PrivateAttr(default_factory=dict)

    @field_validator("providers")
    @classmethod
    def _known(cls, value: dict[str, ProviderSettings]) -> dict[str, ProviderSettings]:
        unknown = sorted(set(value) - set(PROVIDERS))
        if unknown:
            raise ValueError(f"unknown provider {unknown[0]!r}; allowed: {', '.join(PROVIDERS)}")
        return {**_default_providers(), **value}

    def source_of(self, dotted_key: str) -> str:
        """Where a value came from: 'default', a file path, 'env NAME' or a front end's label."""
        key = dotted_key
        while key:
            if key in self._sources:
                return self._sources[key]
            key = key.rpartition(".")[0]
        return "default"

    def base_url(self, provider: str) -> str:
        configured = self.providers[provider].base_url
        if configured:
            return configured
        if provider == "ollama":
            return self.local.endpoint.rstrip("/")
        return DEFAULT_BASE_URLS[provider]

    def configured_providers(self) -> list[str]:
        """Providers that can be called: a key set, or the local server enabled."""
        out = []
        for name in PROVIDERS:
            p = self.providers[name]
            if not p.enabled:
                continue
            if name == "ollama":
                if self.local.enabled:
                    out.append(name)
            elif p.api_key is not None and p.api_key.get_secret_value():
                out.append(name)
        return out


# --- loading -------------------------------------------------------------------------

_ENV_PROVIDER_KEYS = {
    "OPENAI": "openai",
    "ANTHROPIC": "anthropic",
    "GEMINI": "gemini",
    "OPENROUTER": "openrouter",
    "OLLAMA": "ollama",
}
_ENV_SCALARS = {
    "LOCAL_MODEL_ENABLED": "local.enabled",
    "LOCAL_MODEL_ENDPOINT": "local.endpoint",
    "AI_PROVIDER_PRIORITY": "routing.priority",
    "AI_AUTO_FALLBACK": "routing.auto_fallback",
    "AI_COST_OPTIMIZATION": "routing.cost_optimization",
    "AI_PROFILE": "routing.profile",
    "AI_MONTHLY_BUDGET": "budget.monthly_usd",
    "AI_REQUESTS_PER_MINUTE": "limits.requests_per_minute",
    "AI_TOKENS_PER_MINUTE": "limits.tokens_per_minute",
    "ORCHESTRATOR_DATA_DIR": "data_dir",
}
ENV_VARS = tuple(
    [f"{p}_{s}" for p in _ENV_PROVIDER_KEYS for s in ("API_KEY", "BASE_URL", "DEFAULT_MODEL")]
    + ["GOOGLE_API_KEY", *_ENV_SCALARS]
)


def user_config_path(env: Mapping[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    base = env.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "orchestrator" / "config.toml"


def _default_data_dir(env: Mapping[str, str]) -> str:
    base = env.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return str(Path(base) / "orchestrator")


def _read_toml(path: Path) -> tuple[dict[str, Any], str]:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"not UTF-8 text ({exc.reason})", file=str(path)) from None
    except OSError as exc:
        raise ConfigError(f"cannot read: {exc.strerror}", file=str(path)) from None
    try:
        return tomllib.loads(text), text
    except tomllib.TOMLDecodeError as exc:
        match = re.search(r"\(at line (\d+), column (\d+)\)", str(exc))
        line = int(match.group(1)) if match else None
        message = re.sub(r"\s*\(at line \d+, column \d+\)", "", str(exc))
        col = f", column {match.group(2)}" if match else ""
        raise ConfigError(f"TOML syntax error{col}: {message}", file=str(path), line=line) from None


def _flatten(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in data.items():
        dotted = f"{prefix}{key}"
        # Catalog entries and header maps are leaves: their inner keys are data, not settings.
        if isinstance(value, Mapping) and dotted not in ("models",) and not dotted.endswith(".headers"):
            out.update(_flatten(value, dotted + "."))
            if not value:
                out[dotted] = {}
        else:
            out[dotted] = value
    return out


def _merge(target: dict[str, Any], layer: Mapping[str, Any]) -> None:
    for key, value in layer.items():
        if isinstance(value, Mapping) and isinstance(target.get(key), dict):
            _merge(target[key], value)
        else:
            target[key] = dict(value) if isinstance(value, Mapping) else value


def _parse_bool(name: str, raw: str) -> bool:
    lowered = raw.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off", ""):
        return False
    raise ConfigError(f"environment variable {name}: expected true or false, got {raw!r}", key=name)


def _env_layer(env: Mapping[str, str]) -> tuple[dict[str, Any], dict[str, str]]:
    layer: dict[str, Any] = {}
    sources: dict[str, str] = {}

    def put(dotted: str, value: Any, name: str) -> None:
        node = layer
        *parents, leaf = dotted.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
        sources[dotted] = f"env {name}"

    for prefix, provider in _ENV_PROVIDER_KEYS.items():
        for suffix, field in (("API_KEY", "api_key"), ("BASE_URL", "base_url"), ("DEFAULT_MODEL", "default_model")):
            name = f"{prefix}_{suffix}"
            if env.get(name):
                put(f"providers.{provider}.{field}", env[name], name)
    if env.get("GOOGLE_API_KEY") and not env.get("GEMINI_API_KEY"):
        put("providers.gemini.api_key", env["GOOGLE_API_KEY"], "GOOGLE_API_KEY")
    for name, dotted in _ENV_SCALARS.items():
        raw = env.get(name)
        if raw is None or raw == "":
            continue
        value: Any = raw
        if dotted in ("local.enabled", "routing.auto_fallback", "routing.cost_optimization"):
            value = _parse_bool(name, raw)
        put(dotted, value, name)
    return layer, sources


def _line_of_key(text: str, dotted: str) -> int | None:
    leaf = dotted.rsplit(".", 1)[-1]
    pattern = re.compile(rf"^\s*[\"']?{re.escape(leaf)}[\"']?\s*=")
    for number, line in enumerate(text.splitlines(), start=1):
        if pattern.match(line):
            return number
    return None


def _allowed_keys(loc: tuple[Any, ...]) -> list[str]:
    """The valid keys of the section that holds the unknown key at `loc`."""
    model: type[BaseModel] = Settings
    parts = [p for p in loc[:-1] if not isinstance(p, int)]
    index = 0
    while index < len(parts):
        part = parts[index]
        if part == "providers" and model is Settings:
            if index + 1 == len(parts):
                return list(PROVIDERS)
            model, index = ProviderSettings, index + 2
            continue
        field = model.model_fields.get(str(part))
        if field is None or not (isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel)):
            return []
        model, index = field.annotation, index + 1
    return sorted(model.model_fields)


def load_settings(
    *,
    cwd: str | Path | None = None,
    env: Mapping[str, str] | None = None,
    user_file: str | Path | None = None,
    workspace_file: str | Path | None = None,
    overrides: Mapping[str, Any] | None = None,
    overrides_label: str = "editor",
) -> Settings:
    """Build `Settings` from every layer; a bad value raises `ConfigError` naming its origin."""
    env = os.environ if env is None else env
    cwd_path = Path(cwd) if cwd is not None else Path.cwd()
    layers: list[tuple[str, dict[str, Any], dict[str, str], str]] = []  # label, data, sources, text

    user_path = Path(user_file) if user_file is not None else user_config_path(env)
    ws_path = Path(workspace_file) if workspace_file is not None else cwd_path / "orchestrator.toml"
    for path in (user_path, ws_path):
        if path.is_file():
            data, text = _read_toml(path)
            layers.append((str(path), data, {k: str(path) for k in _flatten(data)}, text))
        elif user_file is not None and path == user_path or workspace_file is not None and path == ws_path:
            raise ConfigError("file not found", file=str(path))
    env_data, env_sources = _env_layer(env)
    layers.append(("environment", env_data, env_sources, ""))
    if overrides:
        layers.append((overrides_label, dict(overrides), {k: overrides_label for k in _flatten(overrides)}, ""))

    merged: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for _label, data, layer_sources, _text in layers:
        _merge(merged, data)
        sources.update(layer_sources)
    merged.setdefault("data_dir", _default_data_dir(env))

    try:
        settings = Settings.model_validate(merged)
    except ValidationError as exc:
        raise _explain(exc, sources, {label: text for label, _d, _s, text in layers}) from None
    settings._sources = sources
    return settings


def _explain(exc: ValidationError, sources: dict[str, str], texts: dict[str, str]) -> ConfigError:
    err = exc.errors()[0]
    loc = tuple(err["loc"])
    dotted = ".".join(str(p) for p in loc if not isinstance(p, int))
    origin = "default"
    probe = dotted
    while probe:
        if probe in sources:
            origin = sources[probe]
            break
        probe = probe.rpartition(".")[0]
    else:
        # The whole section is wrong (e.g. an unknown provider table): blame whoever set inside it.
        inner = [src for key, src in sources.items() if key.startswith(dotted + ".")]
        origin = inner[-1] if inner else origin
    if err["type"] == "extra_forbidden":
        allowed = _allowed_keys(loc)
        message = f"unknown key {dotted!r}" + (f"; allowed keys here: {', '.join(allowed)}" if allowed else "")
    else:
        message = f"key {dotted!r}: {err['msg']}"
        shown = err.get("input")
        # Echo only scalars: a section could hold an API key.
        if isinstance(shown, str | int | float | bool) and "key" not in dotted and "header" not in dotted:
            message += f" (got {shown!r})"
    if origin.startswith("env "):
        return ConfigError(f"environment variable {origin[4:]}: {message}", key=dotted)
    file = origin if texts.get(origin) else None
    line = _line_of_key(texts[origin], dotted) if file else None
    if file is None and origin != "default":
        message = f"{origin}: {message}"
    return ConfigError(message, file=file, line=line, key=dotted)


def effective_settings(settings: Settings) -> list[tuple[str, Any, str]]:
    """Every leaf setting as (dotted key, redacted value, source), for `orchestrator config`."""
    data = settings.model_dump(mode="json")
    rows = []
    for dotted, value in _flatten(data).items():
        leaf = dotted.rsplit(".", 1)[-1]
        if leaf == "api_key":
            value = "***" if value else None
        elif leaf == "headers" and isinstance(value, dict):
            value = {k: "***" for k in value}
        rows.append((dotted, value, settings.source_of(dotted)))
    return rows
