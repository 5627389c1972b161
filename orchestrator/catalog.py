"""The model catalog: which models exist, what they can do and what they cost.

The shipped list lives in `data/models.toml` so that a price change is a one-line edit
rather than a code change. Users layer their own `[models."<id>"]` tables on top: a
table for a known id changes only the fields it names, a table for a new id must be
complete. Nothing is read at import time; `Catalog.load()` parses the file once per call.
"""

from __future__ import annotations

import difflib
import re
import tomllib
from collections.abc import Iterator, Mapping
from datetime import date
from importlib import resources
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_serializer, field_validator
from pydantic_core import PydanticCustomError

from .errors import ConfigError, UnknownModelError
from .types import Capability

# Mirrors settings.PROVIDERS plus the "local" alias; kept here so the catalog has no
# dependency on the settings layer that feeds it.
PROVIDERS = ("openai", "anthropic", "gemini", "openrouter", "ollama", "local")
LOCAL_PROVIDERS = frozenset({"ollama", "local"})
CAPABILITY_NAMES = tuple(c.value for c in Capability)
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_SHIPPED = "models.toml"


class ModelInfo(BaseModel):
    """One catalog entry. Prices are USD per million tokens."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(min_length=1)
    provider: str
    model: str = Field(min_length=1)
    context_window: int = Field(gt=0)
    max_output: int = Field(gt=0)
    input_per_mtok: float = Field(ge=0)
    output_per_mtok: float = Field(ge=0)
    capabilities: frozenset[Capability]
    quality: int = Field(ge=0, le=100)
    latency_ms: int = Field(ge=0)
    prices_as_of: str
    cached_input_per_mtok: float | None = Field(default=None, ge=0)
    notes: str | None = None

    @field_validator("provider")
    @classmethod
    def _known_provider(cls, value: str) -> str:
        if value not in PROVIDERS:
            raise ValueError(f"unknown provider {value!r}; allowed: {', '.join(PROVIDERS)}")
        return value

    @field_validator("capabilities", mode="before")
    @classmethod
    def _known_capabilities(cls, value: Any) -> Any:
        # Checked here so the message lists every valid name, not pydantic's enum wording.
        allowed = ", ".join(CAPABILITY_NAMES)
        if isinstance(value, str) or not isinstance(value, list | tuple | set | frozenset):
            raise PydanticCustomError(
                "capabilities", "expected a list of capability names from: {allowed}", {"allowed": allowed}
            )
        unknown = [str(v) for v in value if str(v) not in CAPABILITY_NAMES]
        if unknown:
            raise PydanticCustomError(
                "capabilities",
                "unknown capability '{name}'; allowed: {allowed}",
                {"name": unknown[0], "allowed": allowed},
            )
        return value

    @field_validator("prices_as_of")
    @classmethod
    def _iso_date(cls, value: str) -> str:
        try:
            if not _DATE.match(value):
                raise ValueError
            date.fromisoformat(value)
        except ValueError:
            raise ValueError(f"expected a date as YYYY-MM-DD, got {value!r}") from None
        return value

    @field_serializer("capabilities")
    def _ordered(self, value: frozenset[Capability]) -> list[str]:
        # Set order changes from run to run; JSON output and diffs should not.
        return [c.value for c in Capability if c in value]

    @property
    def local(self) -> bool:
        return self.provider in LOCAL_PROVIDERS

    def supports(self, capability: Capability | str) -> bool:
        return Capability(capability) in self.capabilities

    def cost(self, input_tokens: int, output_tokens: int) -> float:
        """USD for one call at the standard rate (tiered surcharges are not modelled)."""
        return (input_tokens * self.input_per_mtok + output_tokens * self.output_per_mtok) / 1_000_000


# Fields a catalog table may hold: everything but `id`, which is the table's key.
_FIELDS = tuple(name for name in ModelInfo.model_fields if name != "id")
_REQUIRED = tuple(name for name in _FIELDS if ModelInfo.model_fields[name].is_required())


class Catalog:
    """The models the orchestrator knows, in file order, looked up by catalog id."""

    def __init__(self, models: Mapping[str, ModelInfo], prices_checked: str = "") -> None:
        self._models = dict(models)
        self._by_wire: dict[tuple[str, str], ModelInfo] | None = None
        self._prices_checked = prices_checked

    @classmethod
    def load(cls, overrides: Mapping[str, Mapping[str, Any]] | None = None, *, source: str = "config") -> Catalog:
        """The shipped catalog with `overrides` (the user's `models` tables) merged in.

        `source` names where the overrides came from, for error messages.
        """
        raw, prices_checked = _read_shipped()
        merged: dict[str, dict[str, Any]] = {key: dict(entry) for key, entry in raw.items()}
        # The shipped file is checked on its own first, so a broken release is never
        # blamed on the user's config.
        models = {key: _build(key, entry, _SHIPPED) for key, entry in merged.items()}
        for key, entry in (overrides or {}).items():
            where = _key(key)
            if not isinstance(entry, Mapping):
                raise ConfigError(f"{where}: expected a table of model fields", file=source, key=where)
            if key in merged:
                merged[key] = {**merged[key], **entry}
            else:
                missing = [name for name in _REQUIRED if name not in entry]
                if missing:
                    raise ConfigError(
                        f"{where}: a new model needs {', '.join(missing)} "
                        f"(required: {', '.join(_REQUIRED)}; capabilities from: {', '.join(CAPABILITY_NAMES)})",
                        file=source,
                        key=where,
                    )
                merged[key] = dict(entry)
            models[key] = _build(key, merged[key], source)
        return cls(models, prices_checked)

    @property
    def prices_checked(self) -> str:
        """The date the shipped prices were last reviewed as a whole."""
        return self._prices_checked

    def __iter__(self) -> Iterator[ModelInfo]:
        return iter(self._models.values())

    def __len__(self) -> int:
        return len(self._models)

    def __contains__(self, model_id: object) -> bool:
        return model_id in self._models

    def ids(self) -> list[str]:
        return list(self._models)

    def get(self, model_id: str) -> ModelInfo:
        """The entry for a catalog id, or for a bare wire id such as "gpt-6.2-sol" when only one model uses it."""
        found = self._models.get(model_id)
        if found is not None:
            return found
        by_wire = [info for info in self._models.values() if info.model == model_id]
        if len(by_wire) == 1:
            return by_wire[0]
        known = [info.id for info in by_wire] or list(self._models)
        error = UnknownModelError(model_id, known)
        if not by_wire and "Did you mean" not in str(error):
            # UnknownModelError only suggests substring matches; typos deserve a guess too.
            close = difflib.get_close_matches(model_id, self._wire_and_ids(), n=5, cutoff=0.6)
            if close:
                ids = list(dict.fromkeys(self._resolve_name(name) for name in close))
                error.args = (f"unknown model {model_id!r}. Did you mean: {', '.join(ids)}?",)
        elif len(by_wire) > 1:
            error.args = (f"model {model_id!r} is ambiguous; use one of: {', '.join(known)}",)
        raise error

    def find(self, provider: str, wire_model: str) -> ModelInfo | None:
        """The entry a provider's answer is priced by: its catalog id or its wire id."""
        hit = self._models.get(wire_model)
        if hit is not None and hit.provider == provider:
            return hit
        # Every answer is priced through here: an index, not a scan of the catalog.
        if self._by_wire is None:
            self._by_wire = {}
            for info in self._models.values():
                self._by_wire.setdefault((info.provider, info.model), info)
        return self._by_wire.get((provider, wire_model))

    def by_provider(self, name: str) -> list[ModelInfo]:
        return [info for info in self._models.values() if info.provider == name]

    def providers(self) -> list[str]:
        return sorted({info.provider for info in self._models.values()})

    def filter(
        self,
        provider: str | None = None,
        capability: Capability | str | None = None,
        max_input_price: float | None = None,
    ) -> list[ModelInfo]:
        """Models matching every given condition; `capability` must be a valid name."""
        wanted = Capability(capability) if capability is not None else None
        return [
            info
            for info in self._models.values()
            if (provider is None or info.provider == provider)
            and (wanted is None or wanted in info.capabilities)
            and (max_input_price is None or info.input_per_mtok <= max_input_price)
        ]

    def _wire_and_ids(self) -> list[str]:
        return [*self._models, *(info.model for info in self._models.values())]

    def _resolve_name(self, name: str) -> str:
        if name in self._models:
            return name
        return next(info.id for info in self._models.values() if info.model == name)


def _read_shipped() -> tuple[dict[str, Mapping[str, Any]], str]:
    path = resources.files("orchestrator") / "data" / _SHIPPED
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot load the shipped model catalog: {exc}", file=_SHIPPED) from None
    models = data.get("models")
    if not isinstance(models, dict):
        raise ConfigError("no [models] tables", file=_SHIPPED)
    return models, str(data.get("prices_checked", ""))


def _key(model_id: str) -> str:
    return f'models."{model_id}"'


def _build(model_id: str, entry: Mapping[str, Any], source: str) -> ModelInfo:
    where = _key(model_id)
    unknown = [name for name in entry if name not in _FIELDS]
    if unknown:
        raise ConfigError(
            f"{where}: unknown field {unknown[0]!r}; allowed: {', '.join(_FIELDS)}", file=source, key=where
        )
    try:
        return ModelInfo(id=model_id, **entry)
    except ValidationError as exc:
        problems = "; ".join(_describe(err) for err in exc.errors())
        raise ConfigError(f"{where}: {problems}", file=source, key=where) from None


def _describe(err: Mapping[str, Any]) -> str:
    field = ".".join(str(part) for part in err.get("loc", ())) or "entry"
    message = str(err.get("msg", "invalid value"))
    # Our own validators' messages arrive prefixed with pydantic's "Value error, ".
    return f"{field}: {message.removeprefix('Value error, ')}"
