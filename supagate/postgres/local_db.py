"""A local Supabase-shaped PostgreSQL that stays up between commands (`supagate db start`).

Its state lives in `.supagate/db.json` under the project: the URL, the postmaster's pid and
its data directory. Later commands find it there; `supagate db stop` shuts it down and
removes it. Unlike the throwaway clusters it is not tied to the process that started it."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import psycopg

from supagate.errors import Failed
from supagate.postgres.embedded import EmbeddedPostgres, pid_alive
from supagate.gates.catalog.model import DEFAULT_EXPOSED_SCHEMAS

STATE = Path(".supagate") / "db.json"


class LocalDbError(Failed):
    pass


def status(project: Path = Path(".")) -> dict | None:
    """The running local database's state, or None (a stale state file is removed)."""
    path = project / STATE
    if not path.exists():
        return None
    state = json.loads(path.read_text())
    if not pid_alive(state["pid"]):
        path.unlink()
        return None
    try:
        with psycopg.connect(state["url"], connect_timeout=3):
            return state
    except psycopg.OperationalError:
        return None


def start(project: Path = Path("."), exposed=DEFAULT_EXPOSED_SCHEMAS) -> dict:
    running = status(project)
    if running is not None:
        return {**running, "already_running": True}
    (project / STATE.parent).mkdir(exist_ok=True)
    pg = EmbeddedPostgres(exposed_schemas=tuple(exposed), persistent=True)
    pg.start()
    state = {"url": pg.url, "pid": pg._proc.pid, "root": str(pg.root), "port": pg.port, "started": time.time()}
    (project / STATE).write_text(json.dumps(state, indent=2))
    return state


def stop(project: Path = Path(".")) -> bool:
    import shutil

    path = project / STATE
    if not path.exists():
        return False
    state = json.loads(path.read_text())
    if pid_alive(state["pid"]):
        os.kill(state["pid"], signal.SIGINT)  # fast shutdown
        deadline = time.monotonic() + 30
        while pid_alive(state["pid"]) and time.monotonic() < deadline:
            time.sleep(0.1)
        if pid_alive(state["pid"]):
            raise LocalDbError(f"failed to stop the local database (postmaster pid {state['pid']})\n"
                               f"Stop it by hand: kill {state['pid']}")
    shutil.rmtree(state["root"], ignore_errors=True)
    path.unlink()
    return True
