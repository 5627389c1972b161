"""Editor configuration: `initializationOptions`, `workspace/configuration` (section
`orchestrator`) and `workspace/didChangeConfiguration`.

Keys the language server reads itself are checked here, one by one: a bad value falls back
to its default and is named in a warning (jedi-language-server does the same); the rest
goes to the core's `load_settings(overrides=...)`, where a bad key is dropped the same way.

    {
      "profile": "balanced",              # quality | balanced | speed | budget | long_context
      "aiDiagnostics": "save",            # off | save | command  (default: [analysis] ai_mode)
      "analysisKinds": ["security", "performance", "style", "refactoring", "testing"],  # [analysis] kinds
      "diagnosticsDelayMs": 300,          # built-in analysis this long after the last edit
      "maxFileKb": 2048,                  # larger files are not analyzed
      "inlineCompletion": {"enabled": true, "profile": "speed", "maxTokens": 128},
      "monthlyBudget": 10.0,              # budget.monthly_usd
      "providerPriority": ["openai", "anthropic"],   # routing.priority
      "settings": {"routing": {"preferences": {...}}}  # anything orchestrator.toml holds
    }
"""

from __future__ import annotations

import asyncio
import copy
import logging
import os
import tempfile
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lsprotocol import types
from pygls.exceptions import JsonRpcException

if TYPE_CHECKING:
    from .server import OrchestratorServer

log = logging.getLogger(__name__)

SECTION = "orchestrator"
PROFILES = ("quality", "balanced", "speed", "budget", "long_context")
KINDS = ("performance", "security", "style", "refactoring", "testing")
AI_MODES = ("off", "save", "command")


@dataclass(frozen=True)
class EditorConfig:
    # None: what the core's settings say (orchestrator.toml [routing] profile, [analysis] ai_mode and kinds)
    profile: str | None = None
    ai_diagnostics: str | None = None
    analysis_kinds: tuple[str, ...] | None = None
    diagnostics_delay_ms: int = 300
    max_file_kb: int = 2048
    inline_enabled: bool = True
    inline_profile: str = "speed"
    inline_max_tokens: int = 128
    # What goes to the core, in orchestrator.toml's shape (validated there).
    core: dict[str, Any] = field(default_factory=dict)

    def replace(self, **changes: Any) -> EditorConfig:
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        values.update(changes)
        return EditorConfig(**values)


def _one_of(choices: tuple[str, ...]) -> Callable[[Any], Any]:
    def check(value: Any) -> Any:
        if not isinstance(value, str) or value not in choices:
            raise ValueError(f"expected one of {', '.join(choices)}")
        return value

    return check


def _kinds(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [v.strip() for v in value.split(",") if v.strip()]
    if not isinstance(value, list | tuple) or not value:
        raise ValueError(f"expected a non-empty list of: {', '.join(KINDS)}")
    bad = [v for v in value if v not in KINDS]
    if bad:
        raise ValueError(f"unknown kind {bad[0]!r}; expected any of: {', '.join(KINDS)}")
    return tuple(dict.fromkeys(value))


def _int_between(low: int, high: int) -> Callable[[Any], int]:
    def check(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int | float) or value != int(value):
            raise ValueError(f"expected a whole number from {low} to {high}")
        if not low <= int(value) <= high:
            raise ValueError(f"expected a whole number from {low} to {high}")
        return int(value)

    return check


def _bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise TypeError("expected true or false")
    return value


# editor key (dotted) -> (EditorConfig field, check)
_LOCAL: dict[str, tuple[str, Callable[[Any], Any]]] = {
    "profile": ("profile", _one_of(PROFILES)),
    "aiDiagnostics": ("ai_diagnostics", _one_of(AI_MODES)),
    "analysisKinds": ("analysis_kinds", _kinds),
    "diagnosticsDelayMs": ("diagnostics_delay_ms", _int_between(0, 60_000)),
    "maxFileKb": ("max_file_kb", _int_between(1, 1_000_000)),
    "inlineCompletion.enabled": ("inline_enabled", _bool),
    "inlineCompletion.profile": ("inline_profile", _one_of(PROFILES)),
    "inlineCompletion.maxTokens": ("inline_max_tokens", _int_between(1, 4096)),
}
# editor key -> core settings key (dotted); checked by the core
_CORE = {"monthlyBudget": "budget.monthly_usd", "providerPriority": "routing.priority"}


def section_of(options: Any) -> Mapping[str, Any]:
    """Our section from whatever a client sent: `{"orchestrator": {...}}` or the section itself."""
    if not isinstance(options, Mapping):
        return {}
    inner = options.get(SECTION)
    return inner if isinstance(inner, Mapping) else options


def _get(data: Mapping[str, Any], dotted: str) -> tuple[bool, Any]:
    node: Any = data
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return False, None
        node = node[part]
    return True, node


def _put(target: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, leaf = dotted.split(".")
    for part in parents:
        target = target.setdefault(part, {})
    target[leaf] = value


def merge(*layers: Any) -> dict[str, Any]:
    """Later layers win, key by key (nested tables merge)."""
    out: dict[str, Any] = {}

    def into(target: dict[str, Any], layer: Mapping[str, Any]) -> None:
        for key, value in layer.items():
            if isinstance(value, Mapping) and isinstance(target.get(key), dict):
                into(target[key], value)
            else:
                target[key] = copy.deepcopy(dict(value)) if isinstance(value, Mapping) else value

    for layer in layers:
        into(out, section_of(layer))
    return out


def parse(data: Mapping[str, Any]) -> tuple[EditorConfig, list[str]]:
    """The editor configuration and a warning for every value that was ignored."""
    warnings: list[str] = []
    values: dict[str, Any] = {}
    for key, (name, check) in _LOCAL.items():
        present, raw = _get(data, key)
        if not present or raw is None:
            continue
        try:
            values[name] = check(raw)
        except (TypeError, ValueError) as exc:
            warnings.append(f"{SECTION}.{key}: {exc}, got {_show(raw)}; using the default")
    core: dict[str, Any] = {}
    extra = data.get("settings")
    if isinstance(extra, Mapping):
        core = merge(extra)
    elif extra is not None:
        warnings.append(f"{SECTION}.settings: expected a table of orchestrator settings, got {_show(extra)}; ignored")
    for key, dotted in _CORE.items():
        present, raw = _get(data, key)
        if present and raw is not None:
            _put(core, dotted, raw)
    known = {k.split(".")[0] for k in _LOCAL} | set(_CORE) | {"settings"}
    for key in data:
        if key not in known:
            warnings.append(f"{SECTION}.{key}: unknown setting; ignored")
    return EditorConfig(**values, core=core), warnings


def drop(core: dict[str, Any], dotted: str) -> bool:
    """Remove `dotted` (or its nearest existing parent) from `core`; False when absent."""
    parts = dotted.split(".")
    while parts:
        node: Any = core
        for part in parts[:-1]:
            node = node.get(part) if isinstance(node, dict) else None
        if isinstance(node, dict) and parts[-1] in node:
            del node[parts[-1]]
            return True
        parts = parts[:-1]
    return False


def core_settings(core: dict[str, Any], cwd: str | None) -> tuple[Any, list[str]]:
    """The core's `Settings` with the editor's overrides, and what went wrong on the way.

    A bad editor value is dropped (its default applies). A broken file is skipped: first the
    workspace's orchestrator.toml, then the user's config.toml, keeping the environment (and
    so the API keys); only a bad environment variable leaves the built-in defaults."""
    from orchestrator.errors import ConfigError
    from orchestrator.settings import Settings, load_settings

    warnings: list[str] = []
    overrides = copy.deepcopy(core)
    with tempfile.TemporaryDirectory() as empty:  # a directory with no orchestrator.toml in it
        layers = [{"cwd": cwd}, {"cwd": empty}, {"cwd": empty, "env": {**os.environ, "XDG_CONFIG_HOME": empty}}]
        for layer in layers:
            for _ in range(50):
                try:
                    return load_settings(overrides=overrides or None, overrides_label="editor", **layer), warnings
                except ConfigError as exc:
                    if exc.key and drop(overrides, exc.key):
                        warnings.append(f"orchestrator.settings: {exc}; using the default")
                        continue
                    message = f"Orchestrator configuration error: {exc}" + (
                        f"; {exc.file} is ignored until it is fixed" if exc.file else ""
                    )
                    if message not in warnings:
                        warnings.append(message)
                    break
    env = os.environ
    data_dir = env.get("ORCHESTRATOR_DATA_DIR") or str(
        Path(env.get("XDG_DATA_HOME") or Path.home() / ".local" / "share") / "orchestrator"
    )
    warnings.append("Orchestrator is running with its built-in defaults")
    return Settings(data_dir=data_dir), warnings


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


# -- the handlers ------------------------------------------------------------------------


def register(ls: OrchestratorServer) -> None:
    layers: dict[str, Any] = {"init": {}, "client": {}}
    pending: list[str] = []

    @ls.feature(types.INITIALIZE)
    def initialize(params: types.InitializeParams) -> None:
        # Parse only (no I/O): `initialize` must be answered at once; warnings go out after it.
        layers["init"] = merge(params.initialization_options)
        ls.config, warnings = parse(layers["init"])
        pending.extend(warnings)

    @ls.feature(types.INITIALIZED)
    async def initialized(params: types.InitializedParams) -> None:
        for warning in pending:
            ls.show(warning, types.MessageType.Warning)
        pending.clear()
        if ls.supports("workspace.configuration", False):
            layers["client"] = await _pull(ls)
            apply(ls, merge(layers["init"], layers["client"]), quiet_same=True)
        ls.start_core()
        if ls.supports("workspace.did_change_configuration.dynamic_registration", False):
            # vscode-languageclient sends didChangeConfiguration only to servers that register for it.
            registration = types.Registration(
                id=str(uuid.uuid4()),
                method=types.WORKSPACE_DID_CHANGE_CONFIGURATION,
                register_options=types.DidChangeConfigurationRegistrationOptions(section=SECTION),
            )
            try:
                await ls.client_register_capability_async(types.RegistrationParams(registrations=[registration]))
            except JsonRpcException as exc:
                log.info("client refused the configuration registration: %s", exc)

    @ls.feature(types.WORKSPACE_DID_CHANGE_CONFIGURATION)
    async def changed(params: types.DidChangeConfigurationParams) -> None:
        pushed = params.settings
        if isinstance(pushed, Mapping) and isinstance(pushed.get(SECTION), Mapping):
            layers["client"] = merge(pushed)
        elif ls.supports("workspace.configuration", False):
            layers["client"] = await _pull(ls)  # VS Code sends null: the client wants us to ask
        elif isinstance(pushed, Mapping) and pushed:
            layers["client"] = merge(pushed)
        apply(ls, merge(layers["init"], layers["client"]))


async def _pull(ls: OrchestratorServer) -> dict[str, Any]:
    params = types.ConfigurationParams(items=[types.ConfigurationItem(section=SECTION)])
    try:
        result = await asyncio.wait_for(ls.workspace_configuration_async(params), 10.0)
    except (TimeoutError, JsonRpcException) as exc:
        log.warning("workspace/configuration failed: %s", exc)
        return {}
    first = result[0] if isinstance(result, list | tuple) and result else None
    return merge(first) if isinstance(first, Mapping) else {}


def apply(ls: OrchestratorServer, data: Mapping[str, Any], *, quiet_same: bool = False) -> None:
    """Make `data` the configuration: warn about bad values, rebuild what depends on what changed."""
    new, warnings = parse(data)
    old = ls.config
    if quiet_same and new == old:
        return
    for warning in warnings:
        ls.show(warning, types.MessageType.Warning)
    ls.config = new
    if new.profile != old.profile:
        ls.profile_override = None
    if ls.ready is not None or new.core != old.core:
        ls.start_core()  # a no-op unless the core's settings changed
    if (new.analysis_kinds, new.max_file_kb) != (old.analysis_kinds, old.max_file_kb):
        ls.diagnostics.rerun_all()
    ls.status.changed()
