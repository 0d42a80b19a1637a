"""How the benchmarks report: the median of the runs with their spread (min-max), every
figure next to its peer's from the same run, and each target printed as met or MISSED."""

from __future__ import annotations

import statistics
import subprocess
import time
from pathlib import Path


def fresh_bytecode(root: Path) -> None:
    """Compile our modules as scripts/setup does, so an edited file is not compiled again on
    every timed run where PYTHONDONTWRITEBYTECODE is set."""
    import compileall

    compileall.compile_dir(str(root / "supagate"), quiet=1)


def timed(cmd: list[str], cwd: Path | None = None, env: dict | None = None) -> tuple[float, subprocess.CompletedProcess]:
    started = time.perf_counter()
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    return time.perf_counter() - started, done


class Samples(list):
    """Seconds of repeated runs of one thing."""

    @property
    def median(self) -> float:
        return statistics.median(self)

    def __str__(self) -> str:
        return f"{self.median:6.2f} s ({min(self):.2f}-{max(self):.2f})"


def target(label: str, value: float, limit: float, unit: str = "x", at_least: bool = False) -> tuple[str, bool]:
    met = value >= limit if at_least else value <= limit
    print(f"  target {label}: {value:,.2f}{unit} {'>=' if at_least else '<='} {limit:,g}{unit}: "
          f"{'met' if met else 'MISSED'}", flush=True)
    return label, met
