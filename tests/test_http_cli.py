"""`orchestrator keys` and `orchestrator serve` as commands, in their own processes
(`python -m server.cli.keys` / `server.cli.serve`, the same parser as `orchestrator`)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import openai
import pytest

from tests.fakes.provider_server import FakeProviderServer, Script

ROOT = Path(__file__).resolve().parent.parent
START_TIMEOUT = 30.0


def cli_env(tmp_path: Path, fake: FakeProviderServer | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.endswith(("_API_KEY", "_BASE_URL")) and not k.startswith("AI_")}
    env |= {"XDG_CONFIG_HOME": str(tmp_path / "xdg"), "ORCHESTRATOR_DATA_DIR": str(tmp_path / "data")}
    if fake is not None:
        env |= {"OPENAI_API_KEY": "sk-test-provider", "OPENAI_BASE_URL": fake.base_url + "/v1"}
    return env


def keys(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "server.cli.keys", *args],
        check=False,
        cwd=tmp_path,
        env={**cli_env(tmp_path), "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_keys_create_list_revoke(tmp_path: Path) -> None:
    assert "no keys yet" in keys(tmp_path, "list").stdout
    created = keys(tmp_path, "create", "ci")
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip()
    assert key.startswith("sk-orch-") and len(key) > 40 and "only time" in created.stderr
    assert keys(tmp_path, "create", "ci").returncode == 2  # one active key per name
    assert keys(tmp_path, "create", "bad name!").returncode == 2
    listing = keys(tmp_path, "list")
    assert "ci" in listing.stdout and "active" in listing.stdout and key not in listing.stdout
    assert key[:12] in listing.stdout  # the hint, to tell keys apart
    assert keys(tmp_path, "revoke", "ci").stdout.strip() == "revoked ci"
    assert keys(tmp_path, "revoke", "ci").returncode == 1
    [row] = json.loads(keys(tmp_path, "list", "--json").stdout)
    assert row["name"] == "ci" and row["revoked"] is not None and "sha256" not in row
    assert key.encode() not in b"".join(p.read_bytes() for p in (tmp_path / "data").glob("keys.db*"))


async def test_serve_prints_its_url_answers_and_stops_on_sigterm(
    fake_provider: FakeProviderServer, tmp_path: Path
) -> None:
    created = keys(tmp_path, "create", "sdk")
    key = created.stdout.strip()
    fake_provider.default = Script(chunks=["served"])
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "server.cli.serve",
        "--port",
        "0",
        cwd=tmp_path,
        env={**cli_env(tmp_path, fake_provider), "PYTHONPATH": str(ROOT)},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None and proc.stderr is not None
        line = await asyncio.wait_for(proc.stdout.readline(), START_TIMEOUT)
        url = line.decode().strip()
        assert url.startswith("http://127.0.0.1:"), (await proc.stderr.read()).decode()
        async with openai.AsyncOpenAI(base_url=url + "/v1", api_key=key, max_retries=0) as client:
            answer = await client.chat.completions.create(model="auto", messages=[{"role": "user", "content": "hi"}])
        async with openai.AsyncOpenAI(base_url=url + "/v1", api_key="sk-orch-wrong", max_retries=0) as stranger:
            with pytest.raises(openai.AuthenticationError):
                await stranger.models.list()
        assert answer.choices[0].message.content == "served" and answer.model.startswith("openai/")
    finally:
        proc.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(proc.wait(), START_TIMEOUT)
    err = (await proc.stderr.read()).decode()
    assert code == 0, err
    assert f"orchestrator serve: {url} (API key required)" in err


def test_serve_refuses_no_auth_on_a_public_address(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "server.cli.serve", "--host", "0.0.0.0", "--no-auth"],
        check=False,
        cwd=tmp_path,
        env={**cli_env(tmp_path), "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2 and "loopback" in result.stderr
