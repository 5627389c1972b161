"""Our provider clients vs. the same HTTP calls made with a bare aiohttp session.

The fake provider runs in its own process (not sharing our GIL). Per wire format, streaming and not, at 1
and 64 calls in flight, each call is timed: ours (`stream()` consumed / `await complete()`) and the baseline
(one pooled aiohttp session posting the same URL, headers and JSON bytes, reading the body to the end,
`json.loads` when not streaming), in interleaved rounds so machine noise hits both; plain httpx2 (OpenAI,
not streaming) beside them, as WIRE.md asks. Run from the repo root; sizes: BENCH_C1, BENCH_C64, BENCH_ROUNDS.
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import httpx2

ROOT = Path(__file__).resolve().parent.parent
# Run as `python benchmarks/providers.py`, benchmarks/orchestrator.py would shadow the `orchestrator` package.
sys.path[:] = [str(ROOT)] + [p for p in sys.path if Path(p or ".").resolve() != ROOT / "benchmarks"]

from orchestrator.catalog import Catalog
from orchestrator.providers.anthropic import AnthropicProvider
from orchestrator.providers.base import HttpClients, HTTPProvider
from orchestrator.providers.gemini import GeminiProvider
from orchestrator.providers.openai import OpenAIProvider
from orchestrator.types import Message, Request
from tests.fakes.processes import start_fake_provider, stop_server

ROUNDS = int(os.environ.get("BENCH_ROUNDS", "10"))
CALLS = {1: int(os.environ.get("BENCH_C1", "2000")), 64: int(os.environ.get("BENCH_C64", "5000"))}
WARMUP = {1: 100, 64: 256}
GOAL = 1.05
AGENT = {"User-Agent": "orchestrator/0.1"}  # what HttpClients sends
FORMATS = ("openai", "anthropic", "gemini")
MODELS = {"openai": "gpt-6.1-terra", "anthropic": "claude-haiku-5-5", "gemini": "gemini-3.8-flash"}
PROVIDERS = {"openai": OpenAIProvider, "anthropic": AnthropicProvider, "gemini": GeminiProvider}
Call = Callable[[], Awaitable[None]]
Wire = tuple[str, dict[str, str], dict[str, Any]]  # URL, headers, JSON body


@dataclass
class Side:
    name: str
    call: Call
    latencies: list[float] = field(default_factory=list)
    busy: float = 0.0  # wall seconds spent in this side's timed blocks
    cpu: float = 0.0  # this process's CPU seconds in them

    def p(self, q: int) -> float:  # percentile in ms
        return statistics.quantiles(self.latencies, n=100, method="inclusive")[q - 1] * 1000


def wire_of(provider: Any, req: Request, stream: bool) -> Wire:
    """URL, headers and body our provider sends, built with its own helpers (so the bytes are the same)."""
    headers = {**provider._extra_headers, **provider._headers()}
    if isinstance(provider, GeminiProvider):
        method = "streamGenerateContent" if stream else "generateContent"
        url = provider._url(req.model, method) + ("?alt=sse" if stream else "")
        return url, headers, provider._body(req)
    path = "/v1/messages" if isinstance(provider, AnthropicProvider) else "/chat/completions"
    return provider.base_url + path, headers, provider._body(req, stream=stream)


def bare_session() -> aiohttp.ClientSession:  # configured as HttpClients configures ours
    connector = aiohttp.TCPConnector(limit=100, limit_per_host=100, ttl_dns_cache=300)
    timeout = aiohttp.ClientTimeout(total=None, connect=10.0, sock_read=120.0)
    return aiohttp.ClientSession(connector=connector, timeout=timeout, json_serialize=json.dumps, headers=AGENT)


def ours(provider: HTTPProvider, req: Request, stream: bool) -> Call:
    async def call() -> None:
        if stream:
            async for _ in provider.stream(req):
                pass
        else:
            await provider.complete(req)

    return call


def bare(session: aiohttp.ClientSession, wire: Wire, stream: bool, parse: bool = False) -> Call:
    url, headers, body = wire

    async def call() -> None:
        async with session.post(url, json=body, headers=headers) as resp:
            resp.raise_for_status()
            if not stream:
                json.loads(await resp.read())
            elif not parse:
                async for _ in resp.content.iter_any():
                    pass
            else:  # the floor: every data line decoded, nothing else
                for line in (await resp.read()).split(b"\n"):
                    if line.startswith(b"data: {"):
                        json.loads(line[6:])

    return call


def plain_httpx(client: httpx2.AsyncClient, wire: Wire) -> Call:
    url, headers, body = wire
    headers = {**headers, "Content-Type": "application/json"}

    async def call() -> None:
        resp = await client.post(url, content=json.dumps(body).encode(), headers=headers)
        resp.raise_for_status()
        json.loads(resp.content)

    return call


async def block(side: Side, calls: int, conc: int) -> None:
    """`calls` calls of `side`, `conc` in flight; records per-call latency, wall and client CPU time."""
    left, perf, out = calls, time.perf_counter, side.latencies

    async def worker() -> None:
        nonlocal left
        while left > 0:
            left -= 1
            start = perf()
            await side.call()
            out.append(perf() - start)

    gc.collect()
    wall, cpu = perf(), time.process_time()
    await asyncio.gather(*(worker() for _ in range(conc)))
    side.busy, side.cpu = side.busy + perf() - wall, side.cpu + time.process_time() - cpu


async def measure(sides: list[Side], conc: int) -> dict[str, Side]:
    for side in sides:
        await block(Side(side.name, side.call), WARMUP[conc], conc)  # warm-up: results thrown away
    for r in range(ROUNDS):
        for side in sides if r % 2 == 0 else sides[::-1]:  # alternate who goes first
            await block(side, CALLS[conc] // ROUNDS, conc)
    return {side.name: side for side in sides}


Row = tuple[str, bool, int, dict[str, Side]]


async def run(base: str) -> list[Row]:
    http, catalog = HttpClients(), Catalog.load()
    sessions = {fmt: bare_session() for fmt in FORMATS}
    client = httpx2.AsyncClient(headers=AGENT, timeout=120.0)
    prompt = Message(role="user", content="Write a haiku about the sea, in English please.")
    rows: list[Row] = []
    try:
        for fmt in FORMATS:
            cls, session, url = PROVIDERS[fmt], sessions[fmt], (base + "/v1" if fmt == "openai" else base)
            provider = cls(fmt, base_url=url, api_key="sk-bench", http=http, catalog=catalog, counter=None)
            req = Request(model=MODELS[fmt], messages=(prompt,), system="Be terse.", max_tokens=64, temperature=0.2)
            for stream in (False, True):
                wire = wire_of(provider, req, stream)
                for conc in (1, 64):
                    sides = [Side("ours", ours(provider, req, stream)), Side("bare", bare(session, wire, stream))]
                    if stream:
                        sides.append(Side("floor", bare(session, wire, stream, parse=True)))
                    elif fmt == "openai":
                        sides.append(Side("httpx2", plain_httpx(client, wire)))
                    rows.append((fmt, stream, conc, await measure(sides, conc)))
    finally:
        await http.close()
        await asyncio.gather(*(s.close() for s in sessions.values()))
        await client.aclose()
    return rows


def report(rows: list[Row], took: float) -> None:
    print(f"\nprovider calls: ours vs bare aiohttp, {ROUNDS} interleaved rounds, {took:.0f} s; latency in ms")
    cols = ("ours p50", "p99", "bare p50", "p99", "r p50", "r p99", "CPU us/call", "req/s ours", "bare", "r floor")
    print(f"{'format':<10}{'stream':<7}{'conc':>4}" + "".join(f"{c:>{max(len(c) + 2, 7)}}" for c in cols))
    r50, r99 = dict[tuple[int, str], float](), dict[tuple[int, str], float]()  # worst of stream / not, per format
    floor, cpu_r = {1: 0.0, 64: 0.0}, {1: 0.0, 64: 0.0}  # worst per concurrency
    for fmt, stream, conc, s in rows:
        o, b = s["ours"], s["bare"]
        oc, bc = o.cpu / len(o.latencies) * 1e6, b.cpu / len(b.latencies) * 1e6
        cpu_r[conc] = max(oc / bc, cpu_r[conc])
        a, c = o.p(50) / b.p(50), o.p(99) / b.p(99)
        r50[conc, fmt], r99[conc, fmt] = max(a, r50.get((conc, fmt), 0)), max(c, r99.get((conc, fmt), 0))
        rates = f"{len(o.latencies) / o.busy:>12,.0f}{len(b.latencies) / b.busy:>7,.0f}" if conc > 1 else " " * 19
        f = o.p(50) / s["floor"].p(50) if stream else 0.0
        floor[conc] = max(f, floor[conc])
        print(
            f"{fmt:<10}{'yes' if stream else 'no':<7}{conc:>4}{o.p(50):>10.3f}{o.p(99):>7.2f}{b.p(50):>10.3f}"
            f"{b.p(99):>7.2f}{a:>7.3f}{c:>7.3f}{oc:>8.0f}/{bc:<4.0f}{rates}{f'{f:.3f}' if f else '':>9}"
        )
    print("r = ours/bare; CPU: this process's, per call; r floor: ours / bare that also json.loads each SSE data line")
    hx = {conc: (s["httpx2"].p(50), s["bare"].p(50)) for fmt, stream, conc, s in rows if "httpx2" in s}
    for conc, (h, a) in hx.items():
        print(f"plain httpx2 (openai, non-stream) c{conc}: p50 {h:.3f} ms vs bare aiohttp {a:.3f} ms ({h / a:.2f}x)")

    def summary(ratios: dict[tuple[int, str], float]) -> str:
        each = {conc: ", ".join(f"{fmt} {ratios[conc, fmt]:.2f}" for fmt in FORMATS) for conc in (1, 64)}
        return ", ".join(f"c{c} max {max(ratios[c, f] for f in FORMATS):.2f} ({each[c]})" for c in (1, 64))

    print(
        f"providers: p50 ratio {summary(r50)}; p99 ratio {summary(r99)}; goal p50 <= {GOAL} "
        f"({'met' if max(r50.values()) <= GOAL else 'MISSED'}); stream p50 vs bare+json floor c1 max {floor[1]:.2f} "
        f"c64 max {floor[64]:.2f}; client CPU/call ratio c1 max {cpu_r[1]:.2f} c64 max {cpu_r[64]:.2f}; "
        f"httpx2 c1 p50 {hx[1][0]:.2f} ms c64 p50 {hx[64][0]:.2f} ms; aiohttp c1 {hx[1][1]:.2f} c64 {hx[64][1]:.2f} ms"
    )


def main() -> None:
    proc, base = start_fake_provider()
    try:
        started = time.perf_counter()
        rows = asyncio.run(run(base))
    finally:
        stop_server(proc)
    report(rows, time.perf_counter() - started)


if __name__ == "__main__":
    main()
