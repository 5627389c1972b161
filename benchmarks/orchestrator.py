"""The whole facade (routing, budget reservation, ledger row, provider call) vs. one bare aiohttp POST.

One run against the fake provider (its own process, `--tps` so streams arrive in several chunks), the facade
configured for the OpenAI format only and pinned to one model. Figures: facade/bare p50 and p99 at 1 and 64
calls in flight (interleaved rounds), time to first token through `chat()` minus a bare streaming request, the
cache-hit p50, RSS growth over 10,000 calls, and our added overhead over LiteLLM Router's (same server, same
rounds). Run from the repo root; sizes: BENCH_C1, BENCH_C64 (calls per side), BENCH_RSS_CALLS.
"""

from __future__ import annotations

import asyncio
import gc
import itertools
import json
import logging
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import Any

import aiohttp

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
# Run as `python benchmarks/orchestrator.py`, this file would shadow the `orchestrator` package.
sys.path[:] = [str(ROOT)] + [p for p in sys.path if Path(p or ".").resolve() != HERE]
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # no cost-map download at import
os.environ.setdefault("LITELLM_TELEMETRY", "False")

from orchestrator import prompts
from orchestrator.core import Orchestrator
from orchestrator.routing import Task
from orchestrator.settings import load_settings
from orchestrator.types import Message, Profile, Request
from tests.fakes.processes import start_fake_provider, stop_server

MODEL, WIRE_MODEL, TPS = "openai/gpt-6-luna", "gpt-6-luna", 2000
CALLS = {1: int(os.environ.get("BENCH_C1", "300")), 64: int(os.environ.get("BENCH_C64", "1500"))}
ROUNDS, WARMUP = {1: 10, 64: 6}, {1: 50, 64: 192}
RSS_CALLS, RSS_WARMUP, RSS_CONC = int(os.environ.get("BENCH_RSS_CALLS", "10000")), 500, 16
Call = Callable[[], Awaitable[float | None]]  # a call may report its own figure (TTFT); else its duration counts
N = itertools.count()
AGENT = {"User-Agent": "orchestrator/0.1"}  # what HttpClients sends


@dataclass
class Side:
    name: str
    call: Call
    latencies: list[float] = field(default_factory=list)  # seconds

    def p(self, q: int) -> float:  # percentile in ms
        return statistics.quantiles(self.latencies, n=100, method="inclusive")[q - 1] * 1000


async def block(side: Side, calls: int, conc: int) -> None:
    left, perf, out = calls, time.perf_counter, side.latencies

    async def worker() -> None:
        nonlocal left
        while left > 0:
            left -= 1
            start = perf()
            figure = await side.call()
            out.append(perf() - start if figure is None else figure)

    gc.collect()
    await asyncio.sleep(0.01)  # let another side's background tasks (LiteLLM's logging) finish first
    await asyncio.gather(*(worker() for _ in range(conc)))


async def measure(sides: list[Side], conc: int) -> dict[str, Side]:
    calls, rounds = CALLS[conc], ROUNDS[conc]
    for side in sides:
        await block(Side(side.name, side.call), WARMUP[conc], conc)  # warm-up: thrown away
    for r in range(rounds):
        order = sides[r % len(sides) :] + sides[: r % len(sides)]  # rotate who goes first
        for side in order:
            await block(side, calls // rounds, conc)
    return {side.name: side for side in sides}


def facade(orch: Orchestrator) -> Call:
    async def call() -> None:
        q = f"question {next(N)}"
        await orch.ask(Task.CHAT, Profile.BALANCED, "system", q, model=MODEL, use_cache=False, max_tokens=64)

    return call


def ask_body(question: str) -> dict[str, Any]:  # what OpenAIProvider._body sends for the facade's ask()
    messages = [{"role": "system", "content": "system"}, {"role": "user", "content": question}]
    return {"model": WIRE_MODEL, "messages": messages, "max_tokens": 64, "temperature": 0.2}


def bare(session: aiohttp.ClientSession, url: str) -> Call:
    headers = {"Authorization": "Bearer sk-bench"}

    async def call() -> None:
        async with session.post(url, json=ask_body(f"question {next(N)}"), headers=headers) as resp:
            resp.raise_for_status()
            json.loads(await resp.read())

    return call


def facade_ttft(orch: Orchestrator, messages: list[Message]) -> Call:
    async def call() -> float:
        start, first = time.perf_counter(), 0.0
        async for chunk in await orch.chat(messages, model=MODEL, use_cache=False, max_tokens=64):
            if chunk.text and not first:
                first = time.perf_counter() - start
        return first

    return call


def bare_ttft(session: aiohttp.ClientSession, url: str, body: dict[str, Any]) -> Call:
    headers = {"Authorization": "Bearer sk-bench"}

    async def call() -> float:
        start, first = time.perf_counter(), 0.0
        async with session.post(url, json=body, headers=headers) as resp:
            resp.raise_for_status()
            async for line in resp.content:
                if not first and line.startswith(b"data: {"):
                    choices = json.loads(line[6:]).get("choices")
                    if choices and choices[0].get("delta", {}).get("content"):
                        first = time.perf_counter() - start
        return first

    return call


async def litellm_router(base: str) -> tuple[Any, str]:
    """A LiteLLM Router with one deployment (or None) and its version (or why it is unavailable)."""
    try:
        import litellm
    except Exception as exc:  # noqa: BLE001 - any import failure means "no comparison"
        return None, f"import failed: {type(exc).__name__}: {exc}"
    litellm.telemetry = False
    litellm.suppress_debug_info = True
    litellm.set_verbose = False
    litellm.turn_off_message_logging = True
    for name in ("LiteLLM", "LiteLLM Router", "LiteLLM Proxy", "httpx"):
        logging.getLogger(name).setLevel(logging.ERROR)
    # drop_params: LiteLLM knows gpt-6 as a reasoning model and would refuse temperature=0.2 otherwise.
    params = {"model": MODEL, "api_base": base + "/v1", "api_key": "sk-bench", "drop_params": True}
    router = litellm.Router(model_list=[{"model_name": MODEL, "litellm_params": params}])
    try:
        await litellm_call(router)()
    except Exception as exc:  # noqa: BLE001 - e.g. offline checks we did not turn off
        return None, f"call failed: {type(exc).__name__}: {str(exc)[:200]}"
    return router, f"litellm {version('litellm')}"


def litellm_call(router: Any) -> Call:
    async def call() -> None:
        messages = [{"role": "system", "content": "system"}, {"role": "user", "content": f"question {next(N)}"}]
        await router.acompletion(model=MODEL, messages=messages, max_tokens=64, temperature=0.2)

    return call


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


async def run(base: str, tmp: Path) -> dict[str, Any]:
    env = {"OPENAI_API_KEY": "sk-bench", "OPENAI_BASE_URL": base + "/v1", "AI_PROVIDER_PRIORITY": "openai"}
    env |= {"ORCHESTRATOR_DATA_DIR": str(tmp / "data"), "XDG_CONFIG_HOME": str(tmp / "config"), "HOME": str(tmp)}
    orch = await Orchestrator.create(load_settings(cwd=tmp, env=env), front_end="bench", data_dir=tmp / "data")
    connector = aiohttp.TCPConnector(limit=100, limit_per_host=100, ttl_dns_cache=300)  # as HttpClients has it
    session = aiohttp.ClientSession(connector=connector, json_serialize=json.dumps, headers=AGENT)
    url, out = base + "/v1/chat/completions", dict[str, Any]()
    try:
        provider: Any = orch.providers.get("openai")
        probe = Request(model=WIRE_MODEL, system="system", messages=(Message(role="user", content="q"),), max_tokens=64)
        assert provider._body(probe.model_copy(update={"temperature": 0.2}), stream=False) == ask_body("q")
        first = await orch.ask(Task.CHAT, Profile.BALANCED, "system", "q", model=MODEL, use_cache=False, max_tokens=64)
        assert first.model == MODEL and not first.cached, first

        for conc in (1, 64):
            out[f"c{conc}"] = await measure([Side("facade", facade(orch)), Side("bare", bare(session, url))], conc)

        messages = [Message(role="user", content="Write a haiku about the sea.")]
        req = Request(model=WIRE_MODEL, system=prompts.CHAT_SYSTEM, messages=tuple(messages), max_tokens=64)
        stream_body = provider._body(req, stream=True)  # several chunks: the server sleeps 1/TPS between them
        out["ttft"] = await measure(
            [Side("facade", facade_ttft(orch, messages)), Side("bare", bare_ttft(session, url, stream_body))], 1
        )

        await _hit(orch, miss=True)  # the miss that fills the cache
        await block(Side("warm-up", lambda: _hit(orch)), 50, 1)
        await block(hits := Side("hit", lambda: _hit(orch)), CALLS[1], 1)
        out["hit"] = hits

        await block(Side("rss", facade(orch)), RSS_WARMUP, RSS_CONC)
        gc.collect()
        before = rss_mb()
        await block(Side("rss", facade(orch)), RSS_CALLS, RSS_CONC)
        gc.collect()
        out["rss"] = before, rss_mb()

        router, out["litellm_info"] = await litellm_router(base)
        for conc in (1, 64) if router is not None else ():
            sides = [Side("facade", facade(orch)), Side("bare", bare(session, url)), Side("llm", litellm_call(router))]
            out[f"llm{conc}"] = await measure(sides, conc)
    finally:
        await session.close()
        await orch.close()
    return out


async def _hit(orch: Orchestrator, miss: bool = False) -> None:
    result = await orch.ask(Task.CHAT, Profile.BALANCED, "system", "cached", model=MODEL, max_tokens=64)
    assert result.cached != miss


def report(out: dict[str, Any], took: float) -> None:
    print(f"\norchestrator facade vs bare aiohttp on the fake provider (OpenAI format), {took:.0f} s; latency in ms")
    print(f"{'conc':>4}{'facade p50':>12}{'p99':>8}{'bare p50':>10}{'p99':>8}{'r p50':>8}{'r p99':>8}{'added p50':>11}")
    r50, r99 = {}, {}
    for conc in (1, 64):
        f, b = out[f"c{conc}"]["facade"], out[f"c{conc}"]["bare"]
        r50[conc], r99[conc] = f.p(50) / b.p(50), f.p(99) / b.p(99)
        print(
            f"{conc:>4}{f.p(50):>12.3f}{f.p(99):>8.2f}{b.p(50):>10.3f}{b.p(99):>8.2f}{r50[conc]:>8.3f}{r99[conc]:>8.3f}"
            f"{f.p(50) - b.p(50):>11.3f}"
        )
    tf, tb = out["ttft"]["facade"], out["ttft"]["bare"]
    ttft = tf.p(50) - tb.p(50)
    print(f"TTFT (chat stream, --tps {TPS}) p50: facade {tf.p(50):.3f} ms, bare {tb.p(50):.3f} ms, {ttft:+.3f} ms")
    hit = out["hit"].p(50) * 1000
    print(f"cache hit p50 {hit:.0f} us (p99 {out['hit'].p(99) * 1000:.0f} us)")
    before, after = out["rss"]
    rss = after - before
    print(f"RSS {before:.1f} -> {after:.1f} MB over {RSS_CALLS:,} facade calls at c{RSS_CONC}: {rss:+.2f} MB")
    llm = f"litellm: unavailable ({out['litellm_info']})"
    if "llm1" in out:
        print(f"vs LiteLLM Router ({out['litellm_info']}), p50 ms:")
        print(f"{'conc':>4}{'facade':>9}{'bare':>9}{'litellm':>10}{'ours +':>9}{'litellm +':>11}{'ratio':>8}")
        ratios = {}
        for conc in (1, 64):
            f, b, lt = (out[f"llm{conc}"][k].p(50) for k in ("facade", "bare", "llm"))
            ratios[conc] = (f - b) / max(lt - b, 1e-9)
            print(f"{conc:>4}{f:>9.3f}{b:>9.3f}{lt:>10.3f}{f - b:>9.3f}{lt - b:>11.3f}{ratios[conc]:>8.3f}")
        llm = f"overhead vs litellm router c1 {ratios[1]:.2f} c64 {ratios[64]:.2f} (goal <= 0.25)"
    print(
        f"orchestrator: facade/bare p50 c1 {r50[1]:.2f} c64 {r50[64]:.2f}, p99 c1 {r99[1]:.2f} c64 {r99[64]:.2f} "
        f"(goal <= 1.10); ttft {ttft:+.1f} ms (goal <= 1); cache hit p50 {hit:.0f} us; "
        f"rss {rss:+.1f} MB / {RSS_CALLS / 1000:g}k calls (goal <= 5); {llm}"
    )


def main() -> None:
    proc, base = start_fake_provider("--tps", str(TPS))
    try:
        started = time.perf_counter()
        with tempfile.TemporaryDirectory(prefix="orch-bench-") as tmp:
            out = asyncio.run(run(base, Path(tmp)))
    finally:
        stop_server(proc)
    report(out, time.perf_counter() - started)


if __name__ == "__main__":
    main()
