"""What the facade-level tests share: settings that point every provider at the fake
server, and a small module with known defects."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from orchestrator.settings import Settings, load_settings
from tests.fakes.provider_server import FakeProviderServer

KEY = "sk-orch-" + "Zz7" * 12

FLAWED = (
    "import subprocess\n"
    "\n"
    "\n"
    "def run(cmd):\n"
    "    return subprocess.call(cmd, shell=True)\n"
    "\n"
    "\n"
    "def total(items):\n"
    "    out = 0\n"
    "    for x in items:\n"
    "        out = out + x\n"
    "    return out\n"
)


def make_settings(fake: FakeProviderServer, tmp_path: Path, *, key: str = KEY, **env: str) -> Settings:
    """OpenAI, Anthropic and Gemini all answered by `fake`; config and data under tmp_path;
    retries without real waiting."""
    base = {
        "XDG_CONFIG_HOME": str(tmp_path / "xdg"),
        "OPENAI_API_KEY": key,
        "OPENAI_BASE_URL": fake.base_url + "/v1",
        "ANTHROPIC_API_KEY": key,
        "ANTHROPIC_BASE_URL": fake.base_url,
        "GEMINI_API_KEY": key,
        "GEMINI_BASE_URL": fake.base_url,
        "ORCHESTRATOR_DATA_DIR": str(tmp_path / "data"),
    }
    settings = load_settings(cwd=tmp_path, env={**base, **env})
    settings.resilience.base_delay = 0.001
    settings.resilience.max_delay = 0.01
    return settings


def findings_json(*items: dict[str, Any]) -> str:
    """A model's answer to an analysis prompt."""
    return json.dumps({"findings": list(items)})
