"""The MCP server through the SDK's in-memory client, against the fake provider server: every
tool, resource and prompt, roots confinement, and errors that come back as tool results."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import mcp_types as types
import pytest
from mcp import Client

from orchestrator.tokens import TokenCounter
from server.mcp import create_server
from tests.fakes.facade import FLAWED, findings_json, make_settings
from tests.fakes.provider_server import FakeProviderServer, Script

TOKEN_LIMIT = 3_000
PERF = {
    "kind": "performance",
    "severity": "warning",
    "line": 11,
    "code": "out = out + x",
    "message": "manual accumulation in a loop; sum(items) is clearer and faster",
    "suggestion": "return sum(items)",
}


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    (root / "app").mkdir(parents=True)
    (root / "app" / "run.py").write_text(FLAWED)
    (root / "app" / "style.py").write_text("import os\n\n\ndef f(x):\n    return x == None\n")
    (tmp_path / "secret.txt").write_text("top secret\n")
    return root


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("ORCHESTRATOR_DATA_DIR", str(tmp_path / "data"))


Connect = Callable[..., Any]


@pytest.fixture
async def connect(
    env: None, fake_provider: FakeProviderServer, tmp_path: Path, project: Path
) -> AsyncIterator[Connect]:
    """`async with connect(roots=[dir]) as client`: a server with its own facade, and a client that
    declares `roots` (or none: the server's default root is then the project). `mode="legacy"`
    speaks the 2025 protocol (roots asked by a `roots/list` request) instead of the 2026 one
    (roots asked through an `input_required` result)."""
    clients: list[Client] = []

    def open_client(*, roots: list[Path] | None = None, settings: Any = None, mode: str = "auto", **env: str) -> Client:
        server = create_server(settings=settings or make_settings(fake_provider, tmp_path, **env), roots=[project])
        callback = None
        if roots is not None:

            async def callback(_ctx: Any) -> types.ListRootsResult:
                return types.ListRootsResult(roots=[types.Root(uri=d.as_uri()) for d in roots])

        client = Client(server, list_roots_callback=callback, read_timeout_seconds=30, mode=mode)
        clients.append(client)
        return client

    yield open_client


async def call(client: Client, tool: str, **arguments: Any) -> dict[str, Any]:
    result = await client.call_tool(tool, arguments)
    text = " ".join(c.text for c in result.content if isinstance(c, types.TextContent))
    assert not result.is_error, text
    assert result.structured_content is not None
    # The same value as compact JSON for clients that read text only, without the nulls.
    assert json.loads(text) == result.structured_content and ": " not in text[:40]
    assert ":null" not in text
    return result.structured_content


async def error(client: Client, tool: str, **arguments: Any) -> str:
    result = await client.call_tool(tool, arguments)
    assert result.is_error, result.structured_content
    return " ".join(c.text for c in result.content if isinstance(c, types.TextContent))


# --- tools/list ----------------------------------------------------------------------------------


async def test_tools_list_is_complete_and_short(connect: Connect) -> None:
    async with connect() as client:
        listed = await client.list_tools()
    names = {t.name for t in listed.tools}
    assert names == {
        "analyze_code",
        "review_diff",
        "ask",
        "consensus",
        "explain",
        "fix",
        "generate_tests",
        "list_models",
        "usage_report",
    }
    for tool in listed.tools:
        assert tool.description and tool.output_schema, tool.name
        for name, prop in tool.input_schema["properties"].items():
            assert "title" not in prop and ("description" in prop or "enum" in prop or name == "question"), name
    # What the client receives: the result as the SDK puts it on the wire (compact JSON), and
    # with the spaces of `json.dumps`, as a client may log it or hand it on.
    wire = listed.model_dump_json(by_alias=True, exclude_none=True)
    spaced = json.dumps(listed.model_dump(mode="json", by_alias=True, exclude_none=True))
    assert TokenCounter().count(wire) <= TokenCounter().count(spaced) <= TOKEN_LIMIT


# --- analysis --------------------------------------------------------------------------------------


async def test_analyze_code_file_in_roots(connect: Connect, fake_provider: FakeProviderServer, project: Path) -> None:
    fake_provider.default = Script(text=findings_json(PERF))
    async with connect(roots=[project]) as client:
        out = await call(client, "analyze_code", path="app/run.py", kinds=["security", "performance"])
    by_rule = {(f["source"], f["lines"][0]) for f in out["findings"]}
    assert ("orchestrator/bandit", 5) in by_rule  # shell=True
    ai = [f for f in out["findings"] if f["source"].startswith("ai/")]
    assert [(f["kind"], f["lines"]) for f in ai] == [("performance", [11, 11])]
    assert ai[0]["suggestion"] == "return sum(items)"
    assert out["models"] and out["cost_usd"] > 0 and out["tokens_in"] > 0 and "security →" in out["reason"]


async def test_analyze_inline_code_gives_safe_fix_as_diff(connect: Connect, fake_provider: FakeProviderServer) -> None:
    fake_provider.default = Script(text=findings_json())
    code = "import os\n\n\ndef f(x):\n    return x == None\n"
    async with connect() as client:
        out = await call(client, "analyze_code", code=code, language="python", kinds=["style"], profile="budget")
    fixed = [f for f in out["findings"] if f.get("fix")]
    assert fixed, out["findings"]
    assert all(f["fix"].startswith("--- a/snippet.py\n+++ b/snippet.py\n@@") for f in fixed)
    assert {f["rule"] for f in out["findings"]} >= {"F401", "E711"}


async def test_analyze_consensus(connect: Connect, fake_provider: FakeProviderServer) -> None:
    fake_provider.default = Script(text=findings_json(PERF))
    async with connect() as client:
        out = await call(client, "analyze_code", code=FLAWED, kinds=["performance"], consensus=True)
    ai = [f for f in out["findings"] if f["source"] == "ai/consensus"]
    assert [(f["lines"], f["agreement"]) for f in ai] == [([11, 11], 3)]
    assert len(out["models"]) == 3 and out["reason"].startswith("consensus of")


async def test_review_inline_diff_keeps_changed_lines_only(
    connect: Connect, fake_provider: FakeProviderServer, project: Path
) -> None:
    fake_provider.default = Script(text=findings_json(PERF))
    diff = (
        "diff --git a/app/run.py b/app/run.py\n"
        "--- a/app/run.py\n+++ b/app/run.py\n"
        "@@ -10,2 +10,2 @@ def total(items):\n"
        "     for x in items:\n"
        "-        out += x\n"
        "+        out = out + x\n"
    )
    async with connect(roots=[project]) as client:
        out = await call(client, "review_diff", diff=diff, kinds=["security", "performance"])
    assert out["files"] == ["app/run.py"]
    # shell=True on line 5 is real but unchanged: not reported.
    assert [(f["path"], f["lines"], f["kind"]) for f in out["findings"]] == [("app/run.py", [11, 11], "performance")]


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
async def test_review_git_range(connect: Connect, fake_provider: FakeProviderServer, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    env = {"GIT_CONFIG_GLOBAL": "/dev/null", "GIT_CONFIG_NOSYSTEM": "1", "HOME": str(tmp_path)}

    def git(*argv: str) -> None:
        subprocess.run(
            ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *argv],
            cwd=repo,
            env=env,
            check=True,
            capture_output=True,
        )

    (repo / "tool.py").write_text("import subprocess\n\n\ndef ok():\n    return 1\n")
    git("init", "-q")
    git("add", ".")
    git("commit", "-qm", "one")
    (repo / "tool.py").write_text(
        "import subprocess\n\n\ndef ok():\n    return 1\n\n\ndef run(cmd):\n    return subprocess.call(cmd, shell=True)\n"
    )
    git("commit", "-qam", "two")
    (repo / "tool.py").write_text("changed after the commit, not reviewed\n")
    fake_provider.default = Script(text=findings_json())
    async with connect(roots=[repo]) as client:
        out = await call(client, "review_diff", revs="HEAD~1..HEAD", kinds=["security"])
        bad = await error(client, "review_diff", revs="--output=/tmp/x")
    assert out["files"] == ["tool.py"]
    assert [(f["lines"][0], f["source"]) for f in out["findings"]] == [(9, "orchestrator/bandit")]
    assert "expected A..B" in bad


# --- answers ---------------------------------------------------------------------------------------


async def test_ask_with_files_streams_progress(
    connect: Connect, fake_provider: FakeProviderServer, project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from server.mcp import tools

    monkeypatch.setattr(tools, "PROGRESS_EVERY", 0.0)
    fake_provider.script(Script(chunks=["Use ", "sum", "()."], usage=(120, 3)))
    progress: list[tuple[float, str | None]] = []

    async def on_progress(value: float, _total: float | None, message: str | None) -> None:
        progress.append((value, message))

    async with connect(roots=[project]) as client:
        result = await client.call_tool(
            "ask",
            {"question": "How can total() be simpler?", "files": ["app/run.py:8-12", "app/style.py"]},
            progress_callback=on_progress,
        )
    out = result.structured_content
    assert not result.is_error and out is not None
    assert out["answer"] == "Use sum()." and out["model"] and out["reason"].startswith("chat → ")
    assert out["tokens_in"] == 120 and out["tokens_out"] == 3 and out["cost_usd"] > 0
    assert "".join(m or "" for _, m in progress) == "Use sum()."
    assert [v for v, _ in progress] == sorted(v for v, _ in progress)
    sent = json.dumps(fake_provider.requests[-1].json)
    assert "def total(items)" in sent and "x == None" in sent  # both files went as context


async def test_consensus(connect: Connect, fake_provider: FakeProviderServer) -> None:
    fake_provider.default = Script(text="Agreement: high\nUse a set.")
    async with connect() as client:
        out = await call(client, "consensus", question="list or set for lookups?", models=2)
    assert len(out["answers"]) == 2 and out["agreement"] == "high" and out["synthesis"].endswith("Use a set.")
    assert out["cost_usd"] > 0


async def test_explain_and_generate_tests(connect: Connect, fake_provider: FakeProviderServer) -> None:
    fake_provider.script(
        Script(text="It sums the items."),
        Script(text="```python\ndef test_total():\n    assert total([1, 2]) == 3\n```"),
    )
    async with connect() as client:
        explained = await call(client, "explain", path="app/run.py", lines="8-12")
        tests = await call(client, "generate_tests", path="app/run.py", lines="8-12", profile="speed")
    assert explained["answer"] == "It sums the items." and explained["model"]
    assert tests["answer"].startswith("def test_total():") and tests["cost_usd"] > 0


async def test_fix_returns_a_diff_and_writes_nothing(
    connect: Connect, fake_provider: FakeProviderServer, project: Path
) -> None:
    fake_provider.script(
        Script(text=json.dumps({"replacement": "def total(items):\n    return sum(items)\n", "explanation": "sum"}))
    )
    async with connect(roots=[project]) as client:
        out = await call(client, "fix", path=str(project / "app" / "run.py"), lines="8-12", problem="sum it")
    # Named from the root, however the file was named: `git apply` in the root takes it.
    assert out["diff"].startswith("--- a/app/run.py\n+++ b/app/run.py\n")
    assert "+    return sum(items)\n" in out["diff"] and "-    out = 0\n" in out["diff"]
    assert out["explanation"] == "sum" and out["model"]
    assert (project / "app" / "run.py").read_text() == FLAWED


# --- catalog and ledger ----------------------------------------------------------------------------


async def test_list_models_filters(connect: Connect) -> None:
    async with connect() as client:
        every = await call(client, "list_models")
        cheap = await call(client, "list_models", provider="openai", capability="vision", max_price=1.0)
        local = await call(client, "list_models", capability="fim")
    assert [m["id"] for m in cheap["models"]] == ["openai/gpt-6.1-terra", "openai/gpt-6-luna"]
    assert all("vision" in m["caps"] and m["available"] for m in cheap["models"])  # key set, circuit closed
    assert local["models"] and not any(m["available"] for m in local["models"])  # no local server enabled
    assert len(every["models"]) > len(local["models"])


async def test_usage_report_after_a_call(connect: Connect, fake_provider: FakeProviderServer) -> None:
    fake_provider.default = Script(text="ok")
    async with connect(AI_MONTHLY_BUDGET="5") as client:
        await call(client, "explain", code="x = 1\n")
        out = await call(client, "usage_report", period="day", by="task")
    assert [r["key"] for r in out["rows"]] == ["explanation"] and out["rows"][0]["calls"] == 1
    assert out["budget"]["budget_usd"] == 5 and out["budget"]["spent_usd"] > 0


# --- resources and prompts -------------------------------------------------------------------------


async def test_resources(connect: Connect, fake_provider: FakeProviderServer) -> None:
    async with connect() as client:
        listed = {str(r.uri) for r in (await client.list_resources()).resources}
        templates = {t.uri_template for t in (await client.list_resource_templates()).resource_templates}
        assert listed == {"orchestrator://models", "orchestrator://config"}
        assert templates == {"orchestrator://usage/{period}"}

        async def read(uri: str) -> Any:
            contents = (await client.read_resource(uri)).contents
            assert isinstance(contents[0], types.TextResourceContents)
            return json.loads(contents[0].text)

        models = await read("orchestrator://models")
        usage = await read("orchestrator://usage/month")
        config = await read("orchestrator://config")
        with pytest.raises(Exception, match="unknown period"):
            await client.read_resource("orchestrator://usage/decade")
    assert any(m["id"] == "openai/gpt-6-luna" for m in models["models"])
    assert usage["period"] == "month" and usage["rows"] == []
    keys = {row["key"]: row for row in config}
    assert keys["providers.openai.api_key"]["value"] == "***"
    assert keys["providers.openai.base_url"]["value"] == fake_provider.base_url + "/v1"
    assert "sk-orch" not in json.dumps(config)


async def test_prompts(connect: Connect) -> None:
    async with connect() as client:
        names = {p.name for p in (await client.list_prompts()).prompts}
        review = await client.get_prompt("code_review", {"target": "app/", "focus": "error handling"})
        audit = await client.get_prompt("security_audit", {"target": "HEAD~3..HEAD"})
    assert names == {"code_review", "security_audit"}
    text = review.messages[0].content
    assert isinstance(text, types.TextContent) and "analyze_code" in text.text and "error handling" in text.text
    audit_text = audit.messages[0].content
    assert isinstance(audit_text, types.TextContent) and "review_diff" in audit_text.text
