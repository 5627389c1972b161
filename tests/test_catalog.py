from __future__ import annotations

import argparse
import json
import re
from datetime import date

import pytest

from orchestrator.catalog import CAPABILITY_NAMES, Catalog, ModelInfo
from orchestrator.errors import ConfigError, UnknownModelError
from orchestrator.types import Capability
from server.cli import models as models_cli


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return Catalog.load()


def _new_model(**changes: object) -> dict[str, object]:
    entry: dict[str, object] = {
        "provider": "ollama",
        "model": "starcoder2:3b",
        "context_window": 16_384,
        "max_output": 4_096,
        "input_per_mtok": 0,
        "output_per_mtok": 0,
        "capabilities": ["fim"],
        "quality": 20,
        "latency_ms": 100,
        "prices_as_of": "2026-11-26",
    }
    entry.update(changes)
    return entry


# --- the shipped file ----------------------------------------------------------------


def test_shipped_catalog_covers_every_provider(catalog: Catalog) -> None:
    for provider in ("openai", "anthropic", "gemini"):
        assert len(catalog.by_provider(provider)) >= 2, provider
    assert len(catalog.by_provider("openrouter")) >= 2
    assert catalog.by_provider("ollama")
    assert {"openai", "anthropic", "gemini", "openrouter", "ollama"} <= set(catalog.providers())


def test_every_entry_is_sane(catalog: Catalog) -> None:
    checked = date.fromisoformat(catalog.prices_checked)
    for info in catalog:
        assert info.input_per_mtok >= 0 and info.output_per_mtok >= 0, info.id
        assert info.cached_input_per_mtok is None or info.cached_input_per_mtok <= info.input_per_mtok, info.id
        assert info.max_output <= info.context_window, info.id
        assert info.capabilities, info.id
        assert date.fromisoformat(info.prices_as_of) <= checked, info.id
        # Catalog ids are "<provider>/<wire id>", so a bare wire id can find them.
        assert info.id == f"{info.provider}/{info.model}", info.id


def test_local_models_are_free_and_one_does_fim(catalog: Catalog) -> None:
    local = [info for info in catalog if info.local]
    assert local
    assert all(info.cost(1_000_000, 1_000_000) == 0 for info in local)
    assert any(Capability.FIM in info.capabilities for info in local)
    assert not any(info.local for info in catalog.by_provider("openai"))


def test_paid_models_have_a_price(catalog: Catalog) -> None:
    for info in catalog:
        if not info.local:
            assert info.input_per_mtok > 0 and info.output_per_mtok > 0, info.id


# --- ModelInfo -----------------------------------------------------------------------


def test_cost_arithmetic() -> None:
    info = ModelInfo(id="x/y", **_new_model(provider="openai", input_per_mtok=2.5, output_per_mtok=10))
    assert info.cost(1_000_000, 0) == pytest.approx(2.5)
    assert info.cost(0, 1_000_000) == pytest.approx(10)
    assert info.cost(12_000, 800) == pytest.approx(12_000 * 2.5 / 1e6 + 800 * 10 / 1e6)
    assert info.cost(0, 0) == 0


def test_model_info_is_frozen_and_serialises_capabilities_in_order() -> None:
    info = ModelInfo(id="x/y", **_new_model(capabilities=["vision", "chat", "tools"]))
    with pytest.raises(ValueError):
        info.quality = 99  # type: ignore[misc]
    assert info.model_dump(mode="json")["capabilities"] == ["chat", "tools", "vision"]
    assert info.supports("chat") and not info.supports(Capability.FIM)


# --- overrides -----------------------------------------------------------------------


def test_override_merges_a_price_field_by_field(catalog: Catalog) -> None:
    shipped = catalog.get("anthropic/claude-sonnet-5-5")
    merged = Catalog.load({"anthropic/claude-sonnet-5-5": {"input_per_mtok": 1.5}})
    info = merged.get("anthropic/claude-sonnet-5-5")
    assert info.input_per_mtok == 1.5
    assert info.output_per_mtok == shipped.output_per_mtok
    assert info.capabilities == shipped.capabilities
    assert len(merged) == len(catalog)


def test_override_adds_a_new_model() -> None:
    merged = Catalog.load({"ollama/starcoder2:3b": _new_model(notes="mine")})
    info = merged.get("ollama/starcoder2:3b")
    assert info.local and info.capabilities == frozenset({Capability.FIM})
    assert merged.get("starcoder2:3b") is info
    assert merged.ids()[-1] == "ollama/starcoder2:3b"


def test_new_model_missing_fields_names_the_key() -> None:
    entry = _new_model()
    del entry["max_output"], entry["quality"]
    with pytest.raises(ConfigError) as caught:
        Catalog.load({"ollama/half": entry}, source="/home/me/orchestrator.toml")
    message = str(caught.value)
    assert 'models."ollama/half"' in message
    assert "max_output" in message and "quality" in message
    assert message.startswith("/home/me/orchestrator.toml")
    assert caught.value.key == 'models."ollama/half"'


def test_bad_capability_lists_the_valid_names() -> None:
    with pytest.raises(ConfigError) as caught:
        Catalog.load({"openai/gpt-6.2-sol": {"capabilities": ["chat", "telepathy"]}})
    message = str(caught.value)
    assert "telepathy" in message and 'models."openai/gpt-6.2-sol"' in message
    for name in CAPABILITY_NAMES:
        assert name in message


@pytest.mark.parametrize(
    ("entry", "fragment"),
    [
        ({"input_per_mtok": -1}, "input_per_mtok"),
        ({"prices_as_of": "26/11/2026"}, "YYYY-MM-DD"),
        ({"provider": "antropic"}, "allowed: openai"),
        ({"colour": "blue"}, "unknown field 'colour'"),
        ({"quality": 101}, "quality"),
    ],
)
def test_invalid_override_values_are_config_errors(entry: dict[str, object], fragment: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(fragment)):
        Catalog.load({"anthropic/claude-haiku-5-5": entry})


def test_override_that_is_not_a_table() -> None:
    with pytest.raises(ConfigError, match="expected a table"):
        Catalog.load({"openai/gpt-6-luna": 3})  # type: ignore[dict-item]


# --- lookups -------------------------------------------------------------------------


def test_get_accepts_a_bare_wire_id(catalog: Catalog) -> None:
    assert catalog.get("gpt-6.2-sol").id == "openai/gpt-6.2-sol"
    assert catalog.get("qwen2.5-coder:1.5b").provider == "ollama"


def test_get_unknown_suggests_close_ids(catalog: Catalog) -> None:
    with pytest.raises(UnknownModelError) as caught:
        catalog.get("gpt-6.2")
    assert "openai/gpt-6.2-sol" in str(caught.value)
    with pytest.raises(UnknownModelError, match="openai/gpt-6.2-astra"):
        catalog.get("gpt-6.2-astrra")


def test_get_ambiguous_wire_id_lists_candidates() -> None:
    twin = _new_model(provider="local", model="qwen2.5-coder:7b")
    merged = Catalog.load({"local/qwen2.5-coder:7b": twin})
    with pytest.raises(UnknownModelError, match="ambiguous"):
        merged.get("qwen2.5-coder:7b")


def test_filter(catalog: Catalog) -> None:
    fim = catalog.filter(capability="fim")
    assert fim and all(Capability.FIM in info.capabilities for info in fim)
    cheap = catalog.filter(provider="gemini", max_input_price=0.5)
    assert cheap and all(info.provider == "gemini" and info.input_per_mtok <= 0.5 for info in cheap)
    assert catalog.filter() == list(catalog)
    with pytest.raises(ValueError):
        catalog.filter(capability="telepathy")


# --- the `models` command ------------------------------------------------------------


def _args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="orchestrator")
    models_cli.add_parser(parser.add_subparsers(dest="command"))
    return parser.parse_args(["models", *argv])


def test_models_table(catalog: Catalog, capsys: pytest.CaptureFixture[str]) -> None:
    assert models_cli.run(_args(), catalog) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].split() == ["id", "context", "max", "out", "$in/M", "$out/M", "caps", "quality", "latency"]
    assert "openai/gpt-6.2-sol" in out and "ollama/codellama:7b-code" in out
    assert catalog.prices_checked in lines[-1]
    # Every row has the same width up to the last column: the table is aligned.
    header_end = lines[0].index("latency") + len("latency")
    rows = [line for line in lines[1 : len(catalog) + 1]]
    assert all(len(row) == header_end for row in rows)


def test_models_filters_and_json(catalog: Catalog, capsys: pytest.CaptureFixture[str]) -> None:
    assert models_cli.run(_args("--json", "--provider", "ollama", "--capability", "fim"), catalog) == 0
    data = json.loads(capsys.readouterr().out)
    assert data and {entry["provider"] for entry in data} == {"ollama"}
    assert all("fim" in entry["capabilities"] for entry in data)
    assert {"id", "model", "input_per_mtok", "prices_as_of"} <= set(data[0])


def test_models_unknown_capability(catalog: Catalog, capsys: pytest.CaptureFixture[str]) -> None:
    assert models_cli.run(_args("--capability", "telepathy"), catalog) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "telepathy" in captured.err and all(name in captured.err for name in CAPABILITY_NAMES)
