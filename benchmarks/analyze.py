"""Built-in analysis vs. the tools a user would run by hand, and import cost.

Prints, for a generated 1,000-line Python file:
- `orchestrator analyze` (all five kinds, one command) ÷ `ruff check` + `bandit` (two commands);
- the same analysis in-process (what the language server pays per file) ÷ the two commands;
- `import orchestrator` ÷ `import pydantic`, each in a fresh interpreter, and the same for
  `orchestrator.types` (the pydantic models every use of the core loads).
All ratios are medians of repeated runs in this one session: the machine is noisy.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Run as `python benchmarks/analyze.py`, benchmarks/orchestrator.py would shadow the package.
sys.path[:] = [str(ROOT)] + [p for p in sys.path if Path(p or ".").resolve() != ROOT / "benchmarks"]

from tests.fakes.flawed_code import generate

RUNS = int(os.environ.get("BENCH_RUNS", "7"))
BIN = Path(sys.executable).parent


def timed(cmd: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    return time.perf_counter() - start


def in_process(path: Path) -> float:
    from orchestrator.providers.builtin import BuiltinAnalyzer
    from orchestrator.types import AnalysisKind, Document

    doc = Document(path=str(path), text=path.read_text(), language="python", on_disk=True)
    analyzer = BuiltinAnalyzer()
    start = time.perf_counter()
    report = asyncio.run(analyzer.analyze([doc], list(AnalysisKind)))
    elapsed = time.perf_counter() - start
    assert report.findings, "the generated file has defects: no findings means the benchmark is broken"
    return elapsed


def import_time(module: str) -> float:
    code = f"import time; s = time.perf_counter(); import {module}; print(time.perf_counter() - s)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    return float(out)


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        target = work / "generated.py"
        target.write_text(generate(title="Generated module for the analysis benchmark."))
        ruff, bandit, orch = str(BIN / "ruff"), str(BIN / "bandit"), str(BIN / "orchestrator")
        # Warm the OS caches and ruff's lazy work once before measuring.
        timed([ruff, "check", "--no-cache", target.name], work)
        in_process(target)
        baseline, ours_cli, ours_lib = [], [], []
        for _ in range(RUNS):
            baseline.append(
                timed([ruff, "check", "--no-cache", target.name], work) + timed([bandit, "-q", target.name], work)
            )
            ours_cli.append(timed([orch, "analyze", target.name], work))
            ours_lib.append(in_process(target))
        base = statistics.median(baseline)
        cli = statistics.median(ours_cli)
        lib = statistics.median(ours_lib)
    imports_o = statistics.median(import_time("orchestrator") for _ in range(RUNS))
    imports_p = statistics.median(import_time("pydantic") for _ in range(RUNS))
    # `orchestrator` itself is lazy; its types are what the first real use pays for.
    imports_t = statistics.median(import_time("orchestrator.types") for _ in range(RUNS))
    print(
        f"analyze 1000 lines, 5 kinds: cli {cli * 1000:.0f} ms / ruff+bandit {base * 1000:.0f} ms = {cli / base:.2f} "
        f"(goal <= 1.0); in-process {lib * 1000:.0f} ms = {lib / base:.2f}; "
        f"import orchestrator {imports_o * 1000:.1f} ms / pydantic {imports_p * 1000:.1f} ms = "
        f"{imports_o / imports_p:.2f} (goal <= 3); with its types {imports_t * 1000:.1f} ms = {imports_t / imports_p:.2f}"
    )


if __name__ == "__main__":
    main()
