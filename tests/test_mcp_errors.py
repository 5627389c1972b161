"""MCP tool errors: path escapes, unknown models, bad arguments, outages, missing keys and the
budget each come back as an `isError` result with a message to act on, and the server keeps
answering afterwards."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import mcp_types as types
import pytest
from mcp import Client

from orchestrator.settings import load_settings
from server.mcp import create_server
from tests import test_mcp as base
from tests.fakes.facade import make_settings
from tests.fakes.provider_server import FakeProviderServer, Script
from tests.test_mcp import Connect, call, error

connect, env, project = base.connect, base.env, base.project  # the fixtures, shared


async def still_answers(client: Client) -> None:
    assert (await call(client, "list_models", provider="anthropic"))["models"]


@pytest.mark.parametrize("mode", ["auto", "legacy"])  # 2026 input_required roots, and the roots/list request
async def test_paths_outside_the_roots_are_refused(connect: Connect, project: Path, tmp_path: Path, mode: str) -> None:
    (project / "app" / "escape").symlink_to(tmp_path / "secret.txt")
    (project / "app" / "outside").symlink_to(tmp_path)
    attempts = {
        "../secret.txt": "outside the client's roots",
        str(tmp_path / "secret.txt"): "outside the client's roots",
        "app/../../secret.txt": "outside the client's roots",
        "escape": "through a symlink",
        "outside/secret.txt": "through a symlink",
        "/etc/passwd": "outside the client's roots",
    }
    async with connect(roots=[project / "app"], mode=mode) as client:
        assert client.protocol_version == ("2025-11-25" if mode == "legacy" else "2026-07-28")
        for path, why in attempts.items():
            for tool in ("analyze_code", "explain"):
                message = await error(client, tool, path=path)
                assert why in message and str(project / "app") in message, (path, message)
        message = await error(client, "ask", question="what is this?", files=["../../secret.txt"])
        assert "outside the client's roots" in message
        diff = "--- a/../../secret.txt\n+++ b/../../secret.txt\n@@ -1 +1 @@\n-a\n+b\n"
        assert "outside the client's roots" in await error(client, "review_diff", diff=diff)
        # The client's roots replace the server's default: the project root itself is not readable now.
        assert "outside" in await error(client, "analyze_code", path=str(project / "app" / ".." / "escape"))
        # Relative to the client's root (the server's default root has no run.py).
        assert (await call(client, "analyze_code", path="run.py", kinds=["security"]))["findings"]
        await still_answers(client)
    assert "top secret" not in message


async def test_no_client_roots_means_the_default_root(connect: Connect, project: Path) -> None:
    async with connect() as client:
        assert (await call(client, "analyze_code", path="app/run.py", kinds=["security"]))["findings"]
        assert "outside" in await error(client, "analyze_code", path="../secret.txt")


async def test_default_root_is_the_working_directory(
    env: None, project: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(project / "app")
    settings = load_settings(cwd=tmp_path, env={"ORCHESTRATOR_DATA_DIR": str(tmp_path / "d")})
    async with Client(create_server(settings=settings)) as client:
        out = await call(client, "analyze_code", path="run.py", kinds=["security"])
        assert "AI analysis skipped: no provider configured" in out["notes"]
        assert "outside" in await error(client, "analyze_code", path="../app/../../secret.txt")


async def test_missing_files_and_bad_arguments(connect: Connect) -> None:
    async with connect() as client:
        assert "no such file" in await error(client, "analyze_code", path="nope.py")
        assert "not a regular file" in await error(client, "analyze_code", path="app")
        assert "pass `path`" in await error(client, "analyze_code")
        assert "kinds" in await error(client, "analyze_code", code="x = 1", kinds=["speling"])
        assert "profile" in await error(client, "explain", code="x = 1", profile="fastest")
        assert "lines" in await error(client, "explain", code="x = 1\n", lines="10-20")
        assert "lines" in await error(client, "explain", code="x = 1\n", lines="two")
        assert "problem" in await error(client, "fix", code="x = 1\n", lines="1")
        assert "models" in await error(client, "consensus", question="q", models=50)
        assert "period" in await error(client, "usage_report", period="decade")
        assert "pass `diff`" in await error(client, "review_diff")
        assert "no file headers" in await error(client, "review_diff", diff="just some text")
        unknown = await client.call_tool("no_such_tool", {})
        assert unknown.is_error
        await still_answers(client)


async def test_unknown_model(connect: Connect) -> None:
    async with connect() as client:
        message = await error(client, "ask", question="hi", model="openai/gpt-6.2-sool")
        assert "unknown model 'openai/gpt-6.2-sool'" in message and "openai/gpt-6.2-sol" in message
        assert "list_models" in message
        await still_answers(client)


async def test_provider_outage_then_recovery(
    connect: Connect, fake_provider: FakeProviderServer, tmp_path: Path
) -> None:
    settings = make_settings(fake_provider, tmp_path, AI_PROVIDER_PRIORITY="openai")
    settings.resilience.cooldown = 0.0  # the open circuit lets a probe through at once
    fake_provider.default = Script(error="rate_limit", retry_hint="retry-after", retry_after=600)
    async with connect(settings=settings) as client:
        message = await error(client, "ask", question="hi")
        assert "all providers unavailable" in message and "retry in" in message
        explained = await error(client, "explain", code="x = 1\n")
        assert "unavailable" in explained or "circuit" in explained
        await still_answers(client)
        fake_provider.default = Script(text="back")
        out = await call(client, "explain", code="y = 2\n", profile="quality")
        assert out["answer"] == "back"


async def test_no_provider_configured(env: None, tmp_path: Path) -> None:
    settings = load_settings(cwd=tmp_path, env={"ORCHESTRATOR_DATA_DIR": str(tmp_path / "d")})
    async with Client(create_server(settings=settings, roots=[tmp_path])) as client:
        message = await error(client, "ask", question="hi")
        assert "OPENAI_API_KEY" in message and "ANTHROPIC_API_KEY" in message
        await still_answers(client)


async def test_budget_exceeded(connect: Connect, fake_provider: FakeProviderServer) -> None:
    fake_provider.default = Script(text="ok")
    async with connect(AI_MONTHLY_BUDGET="0") as client:
        message = await error(client, "explain", code="x = 1\n")
        assert "budget" in message and "AI_MONTHLY_BUDGET" in message
        assert not fake_provider.requests
        await still_answers(client)


async def test_a_bug_is_an_error_result_not_a_crash(
    connect: Connect, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from server.mcp import reports

    def broken(*_a: Any, **_k: Any) -> Any:
        raise RuntimeError("internal detail")

    async with connect() as client:
        monkeypatch.setattr(reports, "catalog", broken)
        result = await client.call_tool("list_models", {})
        monkeypatch.undo()
        assert result.is_error
        text = result.content[0]
        assert isinstance(text, types.TextContent) and "internal detail" not in text.text
        await still_answers(client)
    assert any("list_models" in r.getMessage() for r in caplog.records)


def test_symlinked_root_is_allowed(tmp_path: Path) -> None:
    from server.mcp.paths import Roots

    real = tmp_path / "real"
    real.mkdir()
    (real / "a.py").write_text("x = 1\n")
    (tmp_path / "alias").symlink_to(real)
    roots = Roots.of([tmp_path / "alias"])
    assert roots.read_text(str(tmp_path / "alias" / "a.py"))[1] == "x = 1\n"
    assert roots.read_text("a.py")[0] == real / "a.py"
    assert os.path.realpath(roots.dirs[0]) == str(real)


async def test_a_cut_stream_is_an_error_with_the_partial_answer(
    connect: Connect, fake_provider: FakeProviderServer
) -> None:
    fake_provider.script(Script(chunks=["The answer ", "is ", "long"], cut_after=1))
    async with connect() as client:
        message = await error(client, "ask", question="q")
        await still_answers(client)
    assert "the answer is incomplete" in message and message.endswith("Partial answer:\nThe answer ")
