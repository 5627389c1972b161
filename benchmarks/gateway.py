"""The HTTP gateway vs. a direct call to the fake provider, with the same client (a pooled aiohttp session).

Three processes: the fake provider, `orchestrator serve` (auth on, OpenAI only, `model: auto`, every
question new so the cache never answers), and this client. Figures:

- latency at 1 call in flight, p50 and p99, gateway vs direct, in interleaved rounds, with the fake
  answering after BENCH_MODEL_MS (default 50 ms: a fast model; real ones take hundreds) and with no
  delay at all (the gateway's whole cost in ms, which no model latency hides);
- requests per second at 64 in flight through the gateway, beside the fake server's own, no delay.

Run from the repo root: python benchmarks/gateway.py. Sizes: BENCH_C1 (calls per side), BENCH_C64.
"""

from __future__ import annotations

import asyncio
import gc
import itertools
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
# Run as `python benchmarks/gateway.py`, benchmarks/orchestrator.py would shadow the `orchestrator` package.
sys.path[:] = [str(ROOT)] + [p for p in sys.path if Path(p or ".").resolve() != ROOT / "benchmarks"]

from server.http.auth import KeyStore, keys_path
from tests.fakes.processes import start_fake_provider, start_server, stop_server

MODEL_MS = float(os.environ.get("BENCH_MODEL_MS", "50"))
C1 = int(os.environ.get("BENCH_C1", "400"))
C64 = int(os.environ.get("BENCH_C64", "6000"))
ROUNDS = 8
GOAL = 1.10
WIRE_MODEL = "gpt-6-luna"
N = itertools.count()
Call = Callable[[], Awaitable[None]]


@dataclass
class Side:
    name: str
    call: Call
    latencies: list[float] = field(default_factory=list)  # seconds
    busy: float = 0.0  # wall seconds of the timed blocks

    def p(self, q: int) -> float:  # percentile in ms
        return statistics.quantiles(self.latencies, n=100, method="inclusive")[q - 1] * 1000

    @property
    def rps(self) -> float:
        return len(self.latencies) / self.busy


@contextmanager
def servers(delay_ms: float, tmp: Path) -> Iterator[tuple[str, str, str]]:
    """(fake provider URL, gateway URL, client key), both processes stopped on exit."""
    fake, fake_url = start_fake_provider("--first-byte-delay", str(delay_ms / 1000))
    try:
        data = tmp / f"data-{delay_ms:g}"
        with KeyStore(keys_path(data)) as store:
            key = store.create("bench")
        env = {k: v for k, v in os.environ.items() if not k.endswith(("_API_KEY", "_BASE_URL"))}
        env |= {
            "OPENAI_API_KEY": "sk-bench",
            "OPENAI_BASE_URL": fake_url + "/v1",
            "AI_PROVIDER_PRIORITY": "openai",
            "ORCHESTRATOR_DATA_DIR": str(data),
            "XDG_CONFIG_HOME": str(tmp / "config"),
        }
        gateway, gateway_url = start_server([sys.executable, "-m", "server.cli.serve", "--port", "0"], env)
        try:
            yield fake_url, gateway_url, key
        finally:
            stop_server(gateway)
    finally:
        stop_server(fake)


def poster(session: aiohttp.ClientSession, url: str, model: str, headers: dict[str, str]) -> Call:
    async def call() -> None:
        body = {"model": model, "messages": [{"role": "user", "content": f"question {next(N)}"}], "max_tokens": 64}
        async with session.post(url, json=body, headers=headers) as resp:
            if resp.status != 200:
                raise SystemExit(f"{url}: {resp.status} {await resp.text()}")
            json.loads(await resp.read())

    return call


async def block(side: Side, calls: int, conc: int) -> None:
    left, perf, out = calls, time.perf_counter, side.latencies

    async def worker() -> None:
        nonlocal left
        while left > 0:
            left -= 1
            t = perf()
            await side.call()
            out.append(perf() - t)

    gc.collect()
    started = perf()
    await asyncio.gather(*(worker() for _ in range(conc)))
    side.busy += perf() - started


async def measure(fake_url: str, gateway_url: str, key: str, calls: int, conc: int) -> dict[str, Side]:
    connector = aiohttp.TCPConnector(limit=100, limit_per_host=100)
    async with aiohttp.ClientSession(connector=connector) as session:
        sides = [
            Side(
                "direct", poster(session, fake_url + "/v1/chat/completions", WIRE_MODEL, {"Authorization": "Bearer x"})
            ),
            Side(
                "gateway",
                poster(session, gateway_url + "/v1/chat/completions", "auto", {"Authorization": f"Bearer {key}"}),
            ),
        ]
        for side in sides:  # warm-up: pools, the gateway's routing latencies, SQLite pages
            await block(Side(side.name, side.call), max(conc * 4, 50), conc)
        for r in range(ROUNDS):
            for side in sides[r % 2 :] + sides[: r % 2]:  # alternate who goes first
                await block(side, calls // ROUNDS, conc)
    return {s.name: s for s in sides}


async def run(tmp: Path) -> dict[str, dict[str, Side]]:
    out = {}
    with servers(MODEL_MS, tmp) as (fake, gateway, key):
        out["model"] = await measure(fake, gateway, key, C1, 1)
    with servers(0, tmp) as (fake, gateway, key):
        out["c1"] = await measure(fake, gateway, key, C1, 1)
        out["c64"] = await measure(fake, gateway, key, C64, 64)
    return out


def report(out: dict[str, dict[str, Side]], took: float) -> None:
    print(f"\nHTTP gateway vs direct calls to the fake provider (OpenAI format, aiohttp client), {took:.0f} s")
    print(f"{'':<28}{'direct p50':>11}{'p99':>8}{'gateway p50':>13}{'p99':>8}{'ratio p50':>11}{'added p50':>11}")
    for name, label in (("model", f"c1, model {MODEL_MS:g} ms"), ("c1", "c1, model 0 ms")):
        d, g = out[name]["direct"], out[name]["gateway"]
        print(
            f"{label:<28}{d.p(50):>11.2f}{d.p(99):>8.2f}{g.p(50):>13.2f}{g.p(99):>8.2f}"
            f"{g.p(50) / d.p(50):>11.3f}{g.p(50) - d.p(50):>11.2f}"
        )
    d, g = out["c64"]["direct"], out["c64"]["gateway"]
    print(
        f"c64 throughput: direct {d.rps:,.0f} req/s (p50 {d.p(50):.1f} ms), gateway {g.rps:,.0f} req/s (p50 {g.p(50):.1f} ms)"
    )
    m = out["model"]
    ratio = m["gateway"].p(50) / m["direct"].p(50)
    added = out["c1"]["gateway"].p(50) - out["c1"]["direct"].p(50)
    verdict = "ok" if ratio <= GOAL else "over"
    print(
        f"gateway: latency/direct p50 {ratio:.3f} at a {MODEL_MS:g} ms model (goal <= {GOAL:.2f}, {verdict}); "
        f"added p50 {added:.2f} ms; c64 {g.rps:,.0f} req/s vs the fake server's own {d.rps:,.0f} req/s"
    )


def main() -> None:
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="orch-gateway-bench-") as tmp:
        out = asyncio.run(run(Path(tmp)))
    report(out, time.perf_counter() - started)


if __name__ == "__main__":
    main()
