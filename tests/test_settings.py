from __future__ import annotations

import logging
from pathlib import Path

import pytest

from orchestrator.errors import ConfigError
from orchestrator.settings import effective_settings, load_settings
from orchestrator.types import Profile

KEY = "sk-proj-" + "A1b2C3d4" * 5


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def layers(tmp_path: Path) -> dict[str, Path]:
    user = write(
        tmp_path / "home" / "config.toml",
        '[routing]\nprofile = "quality"\npriority = ["gemini", "openai"]\n[cache]\nttl_seconds = 60\n'
        "[budget]\nmonthly_usd = 5.0\n",
    )
    ws = tmp_path / "ws"
    write(ws / "orchestrator.toml", '[routing]\nprofile = "speed"\n[cache]\nmax_entries = 10\n')
    return {"user": user, "ws": ws}


def test_defaults_without_files_or_env(tmp_path: Path) -> None:
    s = load_settings(cwd=tmp_path, env={"XDG_CONFIG_HOME": str(tmp_path / "none")})
    assert s.routing.profile is Profile.BALANCED
    assert s.cache.ttl_seconds == 3600 and s.cache.max_entries == 1000
    assert s.configured_providers() == []
    assert s.source_of("routing.profile") == "default"
    assert s.base_url("openai") == "https://api.openai.com/v1"


def test_precedence_defaults_user_workspace_env_editor(layers: dict[str, Path]) -> None:
    env = {"AI_MONTHLY_BUDGET": "12.5", "OPENAI_API_KEY": KEY, "AI_PROVIDER_PRIORITY": "anthropic, local"}
    s = load_settings(cwd=layers["ws"], env=env, user_file=layers["user"], overrides={"cache": {"ttl_seconds": 5}})
    # workspace beats user
    assert s.routing.profile is Profile.SPEED
    assert s.source_of("routing.profile") == str(layers["ws"] / "orchestrator.toml")
    # user value kept where nothing higher sets it
    assert s.cache.max_entries == 10
    # env beats files; "local" is the Ollama-compatible local provider
    assert s.budget.monthly_usd == 12.5 and s.source_of("budget.monthly_usd") == "env AI_MONTHLY_BUDGET"
    assert s.routing.priority == ["anthropic", "ollama"]
    # editor beats everything
    assert s.cache.ttl_seconds == 5 and s.source_of("cache.ttl_seconds") == "editor"
    assert s.configured_providers() == ["openai"]


def test_env_variables_map_to_settings(tmp_path: Path) -> None:
    env = {
        "ANTHROPIC_API_KEY": "sk-ant-" + "x" * 30,
        "ANTHROPIC_BASE_URL": "http://127.0.0.1:9999/",
        "GEMINI_DEFAULT_MODEL": "gemini-2.5-flash",
        "LOCAL_MODEL_ENABLED": "true",
        "LOCAL_MODEL_ENDPOINT": "http://localhost:8000/v1",
        "AI_AUTO_FALLBACK": "false",
        "AI_COST_OPTIMIZATION": "0",
        "AI_REQUESTS_PER_MINUTE": "60",
        "AI_TOKENS_PER_MINUTE": "90000",
        "XDG_CONFIG_HOME": str(tmp_path),
    }
    s = load_settings(cwd=tmp_path, env=env)
    assert s.base_url("anthropic") == "http://127.0.0.1:9999"
    assert s.providers["gemini"].default_model == "gemini-2.5-flash"
    assert s.local.enabled and s.base_url("ollama") == "http://localhost:8000/v1"
    assert not s.routing.auto_fallback and not s.routing.cost_optimization
    assert s.limits.requests_per_minute == 60 and s.limits.tokens_per_minute == 90000
    assert s.configured_providers() == ["anthropic", "ollama"]


def test_toml_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    bad = write(tmp_path / "orchestrator.toml", '[routing]\nprofile = "speed"\n\n[cache\nttl_seconds = 1\n')
    with pytest.raises(ConfigError) as err:
        load_settings(cwd=tmp_path, env={"XDG_CONFIG_HOME": str(tmp_path / "x")})
    assert err.value.file == str(bad) and err.value.line == 4
    assert f"{bad}:4:" in str(err.value) and "TOML syntax error" in str(err.value)


def test_unknown_key_lists_allowed_keys(tmp_path: Path) -> None:
    write(tmp_path / "orchestrator.toml", "[cache]\nenabled = true\nttl = 30\n")
    with pytest.raises(ConfigError) as err:
        load_settings(cwd=tmp_path, env={"XDG_CONFIG_HOME": str(tmp_path / "x")})
    message = str(err.value)
    assert "unknown key 'cache.ttl'" in message
    assert "enabled, max_entries, ttl_seconds" in message
    assert err.value.line == 3


def test_wrong_type_names_key_and_allowed_values(tmp_path: Path) -> None:
    write(tmp_path / "orchestrator.toml", '[routing]\nprofile = "fastest"\n')
    with pytest.raises(ConfigError) as err:
        load_settings(cwd=tmp_path, env={"XDG_CONFIG_HOME": str(tmp_path / "x")})
    message = str(err.value)
    assert "routing.profile" in message and "'quality'" in message and "'long_context'" in message
    assert "fastest" in message


def test_unknown_provider_in_priority(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        load_settings(cwd=tmp_path, env={"AI_PROVIDER_PRIORITY": "openai,mistral", "XDG_CONFIG_HOME": str(tmp_path)})
    assert "AI_PROVIDER_PRIORITY" in str(err.value) and "mistral" in str(err.value)
    assert "anthropic" in str(err.value)


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("AI_AUTO_FALLBACK", "maybe", "expected true or false"),
        ("AI_MONTHLY_BUDGET", "lots", "budget.monthly_usd"),
        ("AI_REQUESTS_PER_MINUTE", "-3", "limits.requests_per_minute"),
        ("OPENAI_BASE_URL", "api.openai.com", "http"),
    ],
)
def test_bad_environment_values(tmp_path: Path, name: str, value: str, expected: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_settings(cwd=tmp_path, env={name: value, "XDG_CONFIG_HOME": str(tmp_path)})
    assert name in str(err.value) and expected in str(err.value)


def test_bad_key_value_is_never_echoed(tmp_path: Path) -> None:
    write(tmp_path / "orchestrator.toml", f'[providers.openai]\napi_key = 12\n[providers.mistral]\napi_key = "{KEY}"\n')
    with pytest.raises(ConfigError) as err:
        load_settings(cwd=tmp_path, env={"XDG_CONFIG_HOME": str(tmp_path / "x")})
    assert KEY not in str(err.value)
    assert "mistral" in str(err.value) or "api_key" in str(err.value)


def test_effective_settings_redacts_keys(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    write(tmp_path / "orchestrator.toml", '[providers.openrouter]\nheaders = { "X-Title" = "secret-ish" }\n')
    s = load_settings(cwd=tmp_path, env={"OPENAI_API_KEY": KEY, "XDG_CONFIG_HOME": str(tmp_path / "x")})
    rows = {key: (value, source) for key, value, source in effective_settings(s)}
    assert rows["providers.openai.api_key"] == ("***", "env OPENAI_API_KEY")
    assert rows["providers.openrouter.headers"][0] == {"X-Title": "***"}
    assert rows["providers.anthropic.api_key"] == (None, "default")
    assert KEY not in repr(s) and KEY not in str(rows) and KEY not in caplog.text


def test_catalog_overrides_are_kept_as_data(tmp_path: Path) -> None:
    write(
        tmp_path / "orchestrator.toml",
        '[models."openai/gpt-4.1"]\ninput_per_mtok = 1.5\n[models."ollama/my-coder"]\nprovider = "ollama"\n',
    )
    s = load_settings(cwd=tmp_path, env={"XDG_CONFIG_HOME": str(tmp_path / "x")})
    assert s.models["openai/gpt-4.1"] == {"input_per_mtok": 1.5}
    assert s.source_of("models") == str(tmp_path / "orchestrator.toml")
