"""The real `orchestrator mcp` process: over stdio, over streamable HTTP with a bearer token, and
driven by the official MCP Inspector's command-line client."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx2
import pytest
from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client

from server.cli.mcp import parse_address
from tests import test_mcp as base
from tests.fakes.facade import KEY, findings_json
from tests.fakes.provider_server import FakeProviderServer, Script
from tests.test_mcp import PERF, call, error

project = base.project  # the fixture, shared
REPO = Path(__file__).resolve().parent.parent
SERVER = [sys.executable, "-m", "server.cli.mcp"]
TOKEN = "t0ken-" + "x" * 24
START_TIMEOUT = 60.0
INSPECTOR_TIMEOUT = 600.0  # the first run downloads the Inspector from npm


def server_env(fake: FakeProviderServer, tmp_path: Path) -> dict[str, str]:
    """What the server process sees: the fake provider, and a home and data dir of its own."""
    return {
        "HOME": str(tmp_path / "home"),
        "XDG_CONFIG_HOME": str(tmp_path / "xdg"),
        "ORCHESTRATOR_DATA_DIR": str(tmp_path / "data"),
        "OPENAI_API_KEY": KEY,
        "OPENAI_BASE_URL": fake.base_url + "/v1",
        "AI_PROVIDER_PRIORITY": "openai",
        "PYTHONPATH": str(REPO),
    }


def test_http_address() -> None:
    assert parse_address("8765") == ("127.0.0.1", 8765)
    assert parse_address(":8765") == ("127.0.0.1", 8765)
    assert parse_address("0.0.0.0:80") == ("0.0.0.0", 80)
    assert parse_address("[::1]:9000") == ("::1", 9000)
    with pytest.raises(Exception, match="HOST:"):
        parse_address("localhost:http")


async def test_stdio_subprocess(fake_provider: FakeProviderServer, tmp_path: Path, project: Path) -> None:
    fake_provider.default = Script(text=findings_json(PERF))
    params = StdioServerParameters(
        command=SERVER[0], args=SERVER[1:], env=server_env(fake_provider, tmp_path), cwd=project
    )
    async with Client(params, read_timeout_seconds=START_TIMEOUT) as client:
        assert len((await client.list_tools()).tools) == 9
        out = await call(client, "analyze_code", path="app/run.py", kinds=["performance"])
        assert [(f["lines"], f["source"]) for f in out["findings"] if f["source"].startswith("ai/")] == [
            ([11, 11], "ai/openai/gpt-6-luna")
        ]
        # No roots declared: the working directory is the root.
        assert "outside the client's roots" in await error(client, "explain", path="../secret.txt")
        assert (await call(client, "list_models", provider="openai"))["models"]
    assert (tmp_path / "data" / "ledger.db").exists() and not (tmp_path / "home").exists()


@pytest.fixture
async def http_server(
    fake_provider: FakeProviderServer, tmp_path: Path, project: Path
) -> AsyncIterator[tuple[str, list[str]]]:
    """`orchestrator mcp --http 127.0.0.1:0 --token ...` running; yields its URL and its stderr lines."""
    env = {"PATH": os.environ.get("PATH", ""), **server_env(fake_provider, tmp_path)}
    proc = await asyncio.create_subprocess_exec(
        *SERVER,
        "--http",
        "127.0.0.1:0",
        "--token",
        TOKEN,
        cwd=project,
        env=env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    assert proc.stderr is not None
    lines: list[str] = []

    async def ready() -> str:
        assert proc.stderr is not None
        while line := (await proc.stderr.readline()).decode():
            lines.append(line)
            if "listening on " in line:
                return line.split("listening on ", 1)[1].strip()
        raise AssertionError(f"the server exited before listening: {''.join(lines)}")

    async def drain() -> None:
        assert proc.stderr is not None
        while line := (await proc.stderr.readline()).decode():
            lines.append(line)

    try:
        url = await asyncio.wait_for(ready(), START_TIMEOUT)
        drainer = asyncio.create_task(drain())
        yield url, lines
    finally:
        if proc.returncode is None:
            proc.terminate()
        await asyncio.wait_for(proc.wait(), 30)
    await drainer
    assert proc.returncode == 0, "".join(lines)


async def test_streamable_http_with_token(
    http_server: tuple[str, list[str]], fake_provider: FakeProviderServer
) -> None:
    url, _lines = http_server
    assert url.startswith("http://127.0.0.1:") and url.endswith("/mcp")
    async with httpx2.AsyncClient() as anonymous:
        refused = await anonymous.post(url, json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"})
        assert refused.status_code == 401 and refused.headers["www-authenticate"] == "Bearer"
    fake_provider.script(Script(chunks=["Use ", "sum()."]))
    progress: list[str] = []

    async def on_progress(_value: float, _total: float | None, message: str | None) -> None:
        progress.append(message or "")

    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with (
        httpx2.AsyncClient(headers=headers, timeout=START_TIMEOUT) as http,
        Client(streamable_http_client(url, http_client=http)) as client,
    ):
        assert len((await client.list_tools()).tools) == 9
        answer = await client.call_tool(
            "ask", {"question": "simpler?", "files": ["app/run.py:8-12"]}, progress_callback=on_progress
        )
        assert not answer.is_error and answer.structured_content is not None
        assert answer.structured_content["answer"] == "Use sum()." and "".join(progress) == "Use sum()."
        assert "outside the client's roots" in await error(client, "analyze_code", path="/etc/passwd")
        assert (await call(client, "usage_report", by="task"))["rows"][0]["key"] == "chat"


async def _run(argv: list[str], env: dict[str, str], cwd: Path) -> dict[str, Any]:
    proc = await asyncio.create_subprocess_exec(
        *argv, cwd=cwd, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    try:
        stdout, stderr = await asyncio.wait_for(proc.communicate(), INSPECTOR_TIMEOUT)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    assert proc.returncode == 0, stderr.decode()[-4000:]
    return json.loads(stdout)  # type: ignore[no-any-return]


@pytest.mark.skipif(shutil.which("npx") is None, reason="npm (npx) is not installed: no MCP Inspector")
async def test_mcp_inspector_cli(fake_provider: FakeProviderServer, tmp_path: Path, project: Path) -> None:
    fake_provider.default = Script(text=findings_json(PERF))
    # npx keeps npm's own cache; the server it starts inherits this environment.
    env = {**os.environ, **server_env(fake_provider, tmp_path)}
    env["HOME"] = os.environ.get("HOME", env["HOME"])
    inspector = ["npx", "-y", "@modelcontextprotocol/inspector", "--cli", *SERVER]
    listed = await _run([*inspector, "--method", "tools/list"], env, project)
    assert {t["name"] for t in listed["tools"]} >= {"analyze_code", "review_diff", "ask", "list_models"}
    called = await _run(
        [
            *inspector,
            "--method",
            "tools/call",
            "--tool-name",
            "analyze_code",
            "--tool-arg",
            "path=app/run.py",
            "--tool-arg",
            'kinds=["security", "performance"]',
        ],
        env,
        project,
    )
    assert not called.get("isError"), called
    findings = called["structuredContent"]["findings"]
    assert {(f["source"], f["lines"][0]) for f in findings} >= {
        ("orchestrator/bandit", 5),
        ("ai/openai/gpt-6-luna", 11),
    }
