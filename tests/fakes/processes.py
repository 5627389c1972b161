"""Servers in their own processes, for the benchmarks: the fake provider, the gateway.

A benchmark must not share its GIL with the server it measures against, so each starts
the server as a subprocess that prints its URL as the first line once it listens.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def start_server(cmd: Sequence[str], env: Mapping[str, str] | None = None) -> tuple[subprocess.Popen[str], str]:
    """A server process, and the URL it prints as its first line once it listens."""
    errors = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115 - lives as long as the server
    proc = subprocess.Popen(
        list(cmd),
        cwd=ROOT,
        env=dict(env) if env is not None else None,
        stdout=subprocess.PIPE,
        stderr=errors,
        text=True,
    )
    assert proc.stdout is not None
    url = proc.stdout.readline().strip()
    if not url.startswith("http://"):
        stop_server(proc)
        errors.seek(0)
        raise SystemExit(f"{' '.join(cmd[:4])} did not start:\n{errors.read()}")
    return proc, url


def start_fake_provider(*args: str) -> tuple[subprocess.Popen[str], str]:
    """The loopback fake provider (`--port 0 --quiet` plus `args`), and its base URL."""
    return start_server([sys.executable, "-m", "tests.fakes.provider_server", "--port", "0", "--quiet", *args])


def stop_server(proc: subprocess.Popen[str], timeout: float = 10.0) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
