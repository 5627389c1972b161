"""The language server's costs, measured over stdio with a bare JSON-RPC client.

Prints:
- start-up: process start to `initialize` answered, `orchestrator lsp` ÷ a minimal pygls server
  (goal <= 1.5), medians of interleaved runs;
- built-in diagnostics on a generated 1,000-line Python file: `didOpen` to `publishDiagnostics`;
- inline completion: request to answer ÷ a direct call of the provider with the same prompt
  (goal <= 1.05), against the fake provider in its own process answering after a fixed delay,
  the time a fast completion model takes (BENCH_MODEL_MS, default 150); the absolute overhead
  in ms beside it, since the ratio depends on that delay;
- idle RSS once the core is built and nothing runs (goal <= 80 MB), and RSS after the analysis.

Run from the repo root: `python benchmarks/lsp.py`. Sizes: BENCH_STARTS, BENCH_OPENS, BENCH_CALLS.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
# Run as `python benchmarks/lsp.py`, benchmarks/orchestrator.py would shadow the `orchestrator` package.
sys.path[:] = [str(ROOT)] + [p for p in sys.path if Path(p or ".").resolve() != ROOT / "benchmarks"]
import aiohttp

from tests.fakes.flawed_code import generate
from tests.fakes.processes import start_fake_provider, stop_server

STARTS = int(os.environ.get("BENCH_STARTS", "9"))
OPENS = int(os.environ.get("BENCH_OPENS", "7"))
CALLS = int(os.environ.get("BENCH_CALLS", "40"))
MODEL_MS = float(os.environ.get("BENCH_MODEL_MS", "150"))
MINIMAL = "from pygls.lsp.server import LanguageServer\nLanguageServer('minimal', '0').start_io()\n"
CAPS = {
    "general": {"positionEncodings": ["utf-16"]},
    "window": {"workDoneProgress": True},
    "workspace": {"configuration": True},
    "textDocument": {"publishDiagnostics": {"codeDescriptionSupport": True, "dataSupport": True}},
}


class Client:
    """JSON-RPC over a subprocess's pipes: requests by id, notifications into a list, and an
    empty answer to every request the server makes (progress, configuration, registration)."""

    def __init__(self, proc: asyncio.subprocess.Process):
        self.proc = proc
        self.ids = itertools.count(1)
        self.pending: dict[int, asyncio.Future[Any]] = {}
        self.notes: list[tuple[float, str, Any]] = []
        self.arrived = asyncio.Event()
        self.reader = asyncio.ensure_future(self._read())

    @classmethod
    async def start(cls, cmd: list[str], env: dict[str, str]) -> tuple[Client, float]:
        started = time.perf_counter()
        proc = await asyncio.create_subprocess_exec(
            *cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, cwd=ROOT
        )
        return cls(proc), started

    def send(self, message: dict[str, Any]) -> None:
        body = json.dumps(message).encode()
        assert self.proc.stdin is not None
        self.proc.stdin.write(b"Content-Length: %d\r\n\r\n%s" % (len(body), body))

    def request(self, method: str, params: Any) -> asyncio.Future[Any]:
        msg_id = next(self.ids)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.pending[msg_id] = future
        self.send({"jsonrpc": "2.0", "id": msg_id, "method": method, "params": params})
        return future

    def notify(self, method: str, params: Any) -> None:
        self.send({"jsonrpc": "2.0", "method": method, "params": params})

    async def wait(self, method: str, where: Any = lambda p: True, since: int = 0) -> tuple[float, Any]:
        while True:
            for at, m, p in self.notes[since:]:
                if m == method and where(p):
                    return at, p
            self.arrived.clear()
            await asyncio.wait_for(self.arrived.wait(), 120)

    async def _read(self) -> None:
        out = self.proc.stdout
        assert out is not None
        while True:
            header = await out.readuntil(b"\r\n\r\n")
            length = int(header.split(b"Content-Length:")[1].split(b"\r\n")[0])
            message = json.loads(await out.readexactly(length))
            now = time.perf_counter()
            if "method" in message and "id" in message:  # the server asks: answer with nothing
                result = (
                    [None] * len(message["params"]["items"]) if message["method"] == "workspace/configuration" else None
                )
                self.send({"jsonrpc": "2.0", "id": message["id"], "result": result})
            elif "method" in message:
                self.notes.append((now, message["method"], message.get("params")))
                self.arrived.set()
            elif message.get("id") in self.pending:
                future = self.pending.pop(message["id"])
                if "error" in message:
                    future.set_exception(RuntimeError(message["error"]))
                else:
                    future.set_result(message["result"])

    async def initialize(self, root: Path, options: Any = None) -> Any:
        params = {"processId": os.getpid(), "rootUri": root.as_uri(), "capabilities": CAPS}
        if options is not None:
            params["initializationOptions"] = options
        return await self.request("initialize", params)

    async def stop(self) -> None:
        try:
            await asyncio.wait_for(self.request("shutdown", None), 10)
            self.notify("exit", None)
            await asyncio.wait_for(self.proc.wait(), 10)
        except (TimeoutError, RuntimeError, ConnectionError):
            self.proc.kill()
            await self.proc.wait()
        self.reader.cancel()


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def environment(base: str, tmp: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.endswith(("_API_KEY", "_BASE_URL")) and not k.startswith("AI_")}
    env.update(
        PYTHONPATH=str(ROOT),
        OPENAI_API_KEY="sk-bench-" + "x" * 24,
        OPENAI_BASE_URL=base + "/v1",
        AI_PROVIDER_PRIORITY="openai",
        ORCHESTRATOR_DATA_DIR=str(tmp / "data"),
        XDG_CONFIG_HOME=str(tmp / "config"),
        XDG_DATA_HOME=str(tmp / "share"),
    )
    return env


async def startup(env: dict[str, str], tmp: Path) -> tuple[float, float, list[float], list[float]]:
    minimal = tmp / "minimal_server.py"
    minimal.write_text(MINIMAL)
    ours, theirs = [], []
    for _ in range(STARTS):
        for cmd, out in (([sys.executable, "-m", "server.cli.lsp"], ours), ([sys.executable, str(minimal)], theirs)):
            client, started = await Client.start(cmd, env)
            await client.initialize(tmp)
            out.append(time.perf_counter() - started)
            await client.stop()
    return statistics.median(ours), statistics.median(theirs), ours, theirs


async def session(env: dict[str, str], tmp: Path, base: str) -> dict[str, Any]:
    root = tmp / "ws"
    root.mkdir(exist_ok=True)
    client, _ = await Client.start([sys.executable, "-m", "server.cli.lsp"], env)
    await client.initialize(root, {"orchestrator": {"diagnosticsDelayMs": 60_000}})
    client.notify("initialized", {})
    await client.wait("orchestrator/status")  # the core is built
    idle = rss_mb(client.proc.pid)
    out: dict[str, Any] = {"idle_rss": idle}

    text = generate(title="Generated module for the diagnostics benchmark.")
    opens = []
    for i in range(OPENS + 1):
        uri = (root / f"module_{i}.py").as_uri()
        mark = len(client.notes)
        sent = time.perf_counter()
        client.notify(
            "textDocument/didOpen", {"textDocument": {"uri": uri, "languageId": "python", "version": 1, "text": text}}
        )
        at, params = await client.wait("textDocument/publishDiagnostics", lambda p, u=uri: p["uri"] == u, mark)
        assert params["diagnostics"], "no findings: the benchmark is broken"
        if i:  # the first open also loads the analyzers
            opens.append(at - sent)
        client.notify("textDocument/didClose", {"textDocument": {"uri": uri}})
    out["diagnostics"] = opens
    out["findings"] = len(params["diagnostics"])
    out["busy_rss"] = rss_mb(client.proc.pid)

    # Inline completion vs. the same call made directly; a line per call, so no cache answers.
    lines = [f"def add_{i}(a, b):\n    " for i in range(CALLS + 5)]
    source = "\n\n".join(lines) + "\n"
    uri = (root / "calc.txt").as_uri()
    opened = {"uri": uri, "languageId": "plaintext", "version": 1, "text": source}
    client.notify("textDocument/didOpen", {"textDocument": opened})
    from orchestrator import prompts

    session_http = aiohttp.ClientSession()
    ours, direct = [], []
    try:
        for i in range(CALLS + 5):
            line = 3 * i + 1
            offset = source.index(lines[i]) + len(lines[i])
            fim = prompts.fim_prompt(source[:offset][-18_000:], source[offset : offset + 6_000], "plaintext")
            body = {
                "model": "gpt-6-luna",
                "max_tokens": 128,
                "temperature": 0.2,
                "messages": [
                    {"role": "system", "content": prompts.FIM_SYSTEM},
                    {"role": "user", "content": fim},
                ],
            }
            started = time.perf_counter()
            async with session_http.post(
                base + "/v1/chat/completions", json=body, headers={"Authorization": "Bearer sk-bench"}
            ) as resp:
                json.loads(await resp.read())
            took_direct = time.perf_counter() - started
            started = time.perf_counter()
            result = await client.request(
                "textDocument/inlineCompletion",
                {
                    "textDocument": {"uri": uri},
                    "position": {"line": line, "character": 4},
                    "context": {"triggerKind": 1},
                },
            )
            took_ours = time.perf_counter() - started
            assert result["items"] and result["items"][0]["insertText"] == "return a + b", result
            if i >= 5:  # warm-up: the first calls load the tokenizer and open connections
                ours.append(took_ours)
                direct.append(took_direct)
    finally:
        await session_http.close()
    out["inline"], out["direct"] = ours, direct
    await client.stop()
    return out


def ms(samples: list[float]) -> str:
    return f"{statistics.median(samples) * 1000:.1f} ms"


def p90(samples: list[float]) -> float:
    return sorted(samples)[int(len(samples) * 0.9)]


def verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


async def run() -> None:
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        fake, base = start_fake_provider("--first-byte-delay", str(MODEL_MS / 1000), "--text", "return a + b")
        try:
            env = environment(base, tmp)
            ours, theirs, all_ours, all_theirs = await startup(env, tmp)
            result = await session(env, tmp, base)
        finally:
            stop_server(fake)
    start_ratio = ours / theirs
    inline, direct = statistics.median(result["inline"]), statistics.median(result["direct"])
    inline_ratio = inline / direct
    print(
        f"start-up to initialize answered: ours {ours * 1000:.0f} ms, minimal pygls {theirs * 1000:.0f} ms "
        f"(runs: ours {min(all_ours) * 1000:.0f}-{max(all_ours) * 1000:.0f}, pygls {min(all_theirs) * 1000:.0f}-"
        f"{max(all_theirs) * 1000:.0f} ms)"
    )
    print(
        f"built-in diagnostics, 1,000-line file, didOpen to publishDiagnostics: median {ms(result['diagnostics'])} "
        f"({result['findings']} findings, {len(result['diagnostics'])} runs)"
    )
    print(
        f"inline completion with a {MODEL_MS:.0f} ms model: ours median {inline * 1000:.1f} ms (p90 "
        f"{p90(result['inline']) * 1000:.1f}), direct {direct * 1000:.1f} ms (p90 {p90(result['direct']) * 1000:.1f}); "
        f"overhead {(inline - direct) * 1000:.1f} ms over {len(result['inline'])} calls"
    )
    print(f"RSS: idle {result['idle_rss']:.0f} MB, after analysis {result['busy_rss']:.0f} MB")
    print(
        f"lsp: start-up {start_ratio:.2f}x minimal pygls (goal <= 1.5, {verdict(start_ratio <= 1.5)}); "
        f"built-in diagnostics 1,000 lines {ms(result['diagnostics'])}; "
        f"inline completion {inline_ratio:.3f}x direct at {MODEL_MS:.0f} ms "
        f"(+{(inline - direct) * 1000:.1f} ms; goal <= 1.05, {verdict(inline_ratio <= 1.05)}); "
        f"idle RSS {result['idle_rss']:.0f} MB (goal <= 80, {verdict(result['idle_rss'] <= 80)})"
    )


if __name__ == "__main__":
    asyncio.run(run())
