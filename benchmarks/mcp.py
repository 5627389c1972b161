"""`analyze_code` through `orchestrator mcp` over stdio vs. the same facade call in-process.

The fake provider runs in its own process and answers every analysis with an empty JSON
list; the response cache is off, so every call does the whole work (built-in analyzers,
one model request per routed model, ledger rows). Calls alternate between the two sides
call by call, so machine noise hits both; the ratio is of the medians. Also prints what
the `tools/list` answer costs an agent in cl100k tokens. Run from the repo root; size:
BENCH_CALLS (per side, default 150).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Run as `python benchmarks/mcp.py`, benchmarks/orchestrator.py would shadow the `orchestrator` package.
sys.path[:] = [str(ROOT)] + [p for p in sys.path if Path(p or ".").resolve() != ROOT / "benchmarks"]

from mcp import Client, StdioServerParameters

from orchestrator.core import Orchestrator
from orchestrator.settings import load_settings
from orchestrator.tokens import TokenCounter
from orchestrator.types import Document
from tests.fakes.processes import start_fake_provider, stop_server

CALLS = int(os.environ.get("BENCH_CALLS", "150"))
WARMUP = 10
GOAL = 1.2
TOKEN_LIMIT = 3_000
SAMPLE = ROOT / "examples" / "flawed_project" / "inventory" / "store.py"
KEY = "sk-bench-" + "x" * 32


async def timed(call: Callable[[], Awaitable[object]], n: int, out: list[float]) -> None:
    for _ in range(n):
        start = time.perf_counter()
        await call()
        out.append(time.perf_counter() - start)


async def bench(base_url: str, tmp: Path) -> None:
    project = tmp / "project"
    project.mkdir()
    shutil.copy(SAMPLE, project / "store.py")
    (tmp / "xdg" / "orchestrator").mkdir(parents=True)
    (tmp / "xdg" / "orchestrator" / "config.toml").write_text("[cache]\nenabled = false\n")
    env = {
        "HOME": str(tmp / "home"),
        "XDG_CONFIG_HOME": str(tmp / "xdg"),
        "ORCHESTRATOR_DATA_DIR": str(tmp / "data"),
        "OPENAI_API_KEY": KEY,
        "OPENAI_BASE_URL": base_url + "/v1",
        "AI_PROVIDER_PRIORITY": "openai",
        "PYTHONPATH": str(ROOT),
    }
    params = StdioServerParameters(command=sys.executable, args=["-m", "server.cli.mcp"], env=env, cwd=project)
    settings = load_settings(cwd=project, env=env)
    orch = await Orchestrator.create(settings, front_end="bench")
    try:
        async with Client(params, read_timeout_seconds=120) as client:
            listed = await client.list_tools()
            tokens = TokenCounter().count(listed.model_dump_json(by_alias=True, exclude_none=True))

            async def over_stdio() -> None:
                result = await client.call_tool("analyze_code", {"path": "store.py"})
                if result.is_error or not result.structured_content:
                    raise SystemExit(f"analyze_code failed: {result.content}")

            async def in_process() -> None:
                path = project / "store.py"
                text = await asyncio.to_thread(path.read_text, encoding="utf-8")
                await orch.analyze(Document(path=str(path), text=text, language="python", on_disk=True))

            stdio_times: list[float] = []
            local_times: list[float] = []
            await timed(over_stdio, WARMUP, [])
            await timed(in_process, WARMUP, [])
            for _ in range(CALLS):  # alternating call by call: drift and noise hit both sides alike
                await timed(over_stdio, 1, stdio_times)
                await timed(in_process, 1, local_times)
    finally:
        await orch.close()
    stdio_ms = statistics.median(stdio_times) * 1000
    local_ms = statistics.median(local_times) * 1000
    ratio = stdio_ms / local_ms
    print(f"analyze_code over stdio: p50 {stdio_ms:.1f} ms ({len(stdio_times)} calls)")
    print(f"orch.analyze in-process: p50 {local_ms:.1f} ms ({len(local_times)} calls)")
    verdict = "ok" if ratio <= GOAL and tokens <= TOKEN_LIMIT else "OVER"
    print(
        f"analyze_code stdio ÷ in-process: {ratio:.2f} (goal ≤ {GOAL}); "
        f"tools/list: {tokens:,} tokens (limit {TOKEN_LIMIT:,}) [{verdict}]"
    )


def main() -> None:
    fake, base_url = start_fake_provider("--text", '{"findings": []}')
    try:
        with tempfile.TemporaryDirectory() as tmp:
            asyncio.run(bench(base_url, Path(tmp)))
    finally:
        stop_server(fake)


if __name__ == "__main__":
    main()
