"""A bandit process started ahead of need, for one batch.

Bandit's scan is pure Python under the GIL; a thread cannot overlap it with our own
checks. A command-line run starts this worker first thing, so bandit's import and scan
use the second core while the parent imports, reads files and runs the AST checks.
"""

from __future__ import annotations

import asyncio
import json
import logging
import subprocess
import sys
import threading
from collections.abc import Iterable
from typing import Any

log = logging.getLogger(__name__)


class BanditWorker:
    def __init__(self, proc: subprocess.Popen[bytes]):
        self._proc = proc
        self._request: bytes | None = None
        self._writer: threading.Thread | None = None

    @classmethod
    def start(cls) -> BanditWorker:
        proc = subprocess.Popen(
            [sys.executable, "-m", "orchestrator.analyzers.bandit_runner"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        return cls(proc)

    def submit(self, files: Iterable[tuple[str, str]]) -> None:
        """Hand the worker its files now; the scan runs while the caller does other work."""
        from .paths import is_test_file

        pairs = [list(pair) for pair in files]
        tests = [path for path, _text in pairs if is_test_file(path)]
        self._request = json.dumps({"files": pairs, "tests": tests}).encode()
        # The pipe holds 64 KiB; a writer thread keeps a large batch from blocking us.
        self._writer = threading.Thread(target=self._write, args=(self._request,), daemon=True)
        self._writer.start()

    def _write(self, data: bytes) -> None:
        assert self._proc.stdin is not None
        try:
            self._proc.stdin.write(data)
            self._proc.stdin.close()
        except OSError as exc:  # the worker died; result() reports it and falls back
            log.debug("bandit worker stdin: %s", exc)

    @property
    def submitted(self) -> bool:
        return self._request is not None

    async def result(self) -> list[dict[str, Any]]:
        """The worker's issues; if it fails for any reason, the same scan in this process."""
        assert self._request is not None, "submit() first"
        try:
            out, err = await asyncio.to_thread(self._read)
            if self._proc.returncode != 0:
                raise RuntimeError(f"exit {self._proc.returncode}: {err.decode(errors='replace')[-500:]}")
            return list(json.loads(out))
        except (OSError, RuntimeError, ValueError) as exc:
            log.warning("bandit worker failed (%s); scanning in-process instead", exc)
            from .bandit_runner import raw_scan

            request = json.loads(self._request)
            return await asyncio.to_thread(raw_scan, [tuple(p) for p in request["files"]], request["tests"])

    def _read(self) -> tuple[bytes, bytes]:
        assert self._proc.stdout is not None and self._proc.stderr is not None
        if self._writer is not None:
            self._writer.join()
        out = self._proc.stdout.read()
        err = self._proc.stderr.read()
        self._proc.wait()
        return out, err

    def close(self) -> None:
        """Stop the worker if it is still running (an error, or no Python file to scan)."""
        if self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()
        if self._writer is not None:
            self._writer.join()
        for pipe in (self._proc.stdin, self._proc.stdout, self._proc.stderr):
            if pipe is not None and not pipe.closed:
                pipe.close()
