"""The usage page in a real browser: headless Chromium (Debian's `chromium`, driven by the
npm package `playwright-core`) opens it from a running gateway, the screenshot is kept in
test-artifacts/, and the figures it drew are checked against the ledger's."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.provider_server import FakeProviderServer, Script
from tests.gateway.harness import Gateway, serve

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts"
DRIVER = Path(__file__).parent / "gateway" / "page_shot.cjs"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
PNG = b"\x89PNG\r\n\x1a\n"

pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).exists(), reason=f"no Chromium at {CHROMIUM} (apt-get install chromium)"
)


def node_env() -> dict[str, str]:
    """node, and NODE_PATH reaching a playwright-core installed with `npm install -g`."""
    node = shutil.which("node")
    if node is None:
        pytest.fail("Chromium is here but node is not: apt-get install nodejs npm")
    env = {**os.environ, "CHROMIUM": CHROMIUM}
    if "NODE_PATH" not in env and (npm := shutil.which("npm")):
        env["NODE_PATH"] = subprocess.run(
            [npm, "root", "-g"], check=False, capture_output=True, text=True
        ).stdout.strip()
    probe = subprocess.run(
        [node, "-e", "require.resolve('playwright-core')"], check=False, env=env, capture_output=True
    )
    if probe.returncode != 0:
        pytest.fail("Chromium is here but the npm package playwright-core is not: npm install -g playwright-core")
    return env


async def shoot(url: str, shot: Path, env: dict[str, str]) -> dict[str, Any]:
    proc = await asyncio.create_subprocess_exec(
        "node", str(DRIVER), url, str(shot), env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=90)
    assert proc.returncode == 0, err.decode()
    return json.loads(out)


def usd(value: float) -> str:
    """What the page's script prints for an amount (as `orchestrator usage` does)."""
    if value == 0 or abs(value) >= 0.1:
        return f"${value:,.2f}"
    return f"${value:.4f}" if abs(value) >= 0.0001 else f"${value:.2g}"


async def make_traffic(gw: Gateway) -> None:
    gw.fake.default = Script(chunks=["An ", "answer."], usage=(120_000, 8_000))
    async with gw.openai() as client:
        for question in ("first question", "second question", "first question"):  # the third: a cache hit
            await client.chat.completions.create(model="auto", messages=[{"role": "user", "content": question}])
        await client.chat.completions.create(
            model="openai/gpt-6-luna", messages=[{"role": "user", "content": "pinned"}]
        )
    async with gw.http() as http:
        resp = await http.post("/api/ai/code-analysis", json={"code": "import os\n", "analysis_type": "security"})
        assert resp.status_code == 200


async def test_usage_page_renders_the_ledgers_figures(fake_provider: FakeProviderServer, tmp_path: Path) -> None:
    env = node_env()
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "usage-page.png"
    shot.unlink(missing_ok=True)
    async with serve(fake_provider, tmp_path, AI_MONTHLY_BUDGET="25") as gw:
        await make_traffic(gw)
        async with gw.http() as http:
            expected = (await http.get("/api/ai/usage/details")).json()
        page = await shoot(f"{gw.url}/#key={gw.key}", shot, env)
        login = await shoot(f"{gw.url}/", tmp_path / "login.png", env)

    assert page["ready"] == "true", page
    assert page["problems"] == [] and page["error"] is None and not page["keyInUrl"]
    figures = page["figures"]
    assert figures["spend"] == usd(expected["budget"]["spent"]) != "$0.00"
    assert figures["budget"] == f"{expected['budget']['used_percentage']:g}% of $25.00 budget"
    assert figures["calls"] == "5" == str(expected["usage"]["total_requests"])
    assert figures["cache-rate"] == "20.0%" and figures["cache-hits"] == "1 of 5 calls from cache"
    assert figures["latency-p50"].endswith(" ms")
    assert [row[0] for row in page["models"]] == [m["model"] for m in expected["by_model"]]
    assert [row[5] for row in page["models"]] == [usd(m["cost"]) for m in expected["by_model"]]
    assert "openai/gpt-6-luna" in [row[0] for row in page["models"]]
    assert page["reasons"] == [r["reason"] for r in expected["recent"]]
    assert any("(pinned)" in r for r in page["reasons"]) and any("security → " in r for r in page["reasons"])
    assert page["dailyBars"] == 30 and page["dailyRange"].endswith(f"today {usd(expected['daily'][-1]['cost'])}")

    data = shot.read_bytes()
    assert data.startswith(PNG) and len(data) > 20_000
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert width == 1280 and height >= 900

    assert login["ready"] == "login"  # no key: the page asks for one, and shows no data
