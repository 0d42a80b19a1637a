"""A Supabase-shaped cluster built once per machine; every throwaway cluster starts as a
copy of it, and every extra database is cloned from its template database.

initdb plus the shape cost about 1.3 s on this machine's disk for each `supagate check`;
copying a ready data directory costs a tenth of that. The copy is keyed by everything the
data directory depends on (the server binary, the shape's SQL, the placeholder extensions,
the preloaded libraries, the owner's uid), so a change to any of them builds a new one.

Where: $SUPAGATE_CACHE_DIR, else $XDG_CACHE_HOME/supagate, else ~/.cache/supagate, under
`pg-templates/<key>`. A template is only ever read after its READY file exists; builders
take a file lock, build beside it and rename into place, so concurrent checks never see
half a template. Old keys are pruned when a new one is stored.

A template holds no password (its builder never had one: cluster_access.py) and no access
rules that count (each cluster writes its own). The folder is the caller's alone (0700): a
folder someone else could write would let them plant settings every later cluster starts with.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import subprocess
import tempfile
import time
from importlib import resources
from pathlib import Path
from stat import S_ISDIR

from supagate.errors import Failed

FORMAT = "2"  # bump when the build steps change in a way the key cannot see
TEMPLATE_DB = "supagate_template"  # the shaped database `create_database` clones
PRUNE_AFTER_S = 3600  # a template of another key unused for this long is removed


class TemplateError(Failed):
    pass


def cache_dir() -> Path:
    override = os.environ.get("SUPAGATE_CACHE_DIR")
    if override:
        base = Path(override)
    else:
        base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "supagate"
    folder = base / "pg-templates"
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError:  # no writable home (a locked-down runner): one per boot instead
        folder = Path(tempfile.gettempdir()) / f"supagate-templates-{os.geteuid()}"  # not swept: not supagate-pg-*
        folder.mkdir(mode=0o700, exist_ok=True)
    return _private(folder)


def _private(folder: Path) -> Path:
    """`folder`, if it is ours: then only we may enter it."""
    found = os.lstat(folder)  # a symlink is not followed: it is refused
    if not S_ISDIR(found.st_mode) or found.st_uid != os.geteuid():
        raise TemplateError(f"failed to use the cluster template cache {folder}: it is not a folder of yours "
                            f"(owner uid {found.st_uid}), and whoever can write it decides how every local "
                            "cluster starts\nRemove it, or set SUPAGATE_CACHE_DIR to a folder of your own.")
    if found.st_mode & 0o077:
        os.chmod(folder, 0o700)
    return folder


def key(bindir: Path, preload: list[str], uid: int, initdb_args: list[str]) -> str:
    digest = hashlib.sha256()
    server = (bindir / "postgres").resolve()
    stat = server.stat()
    digest.update(f"{FORMAT}\n{server}\n{stat.st_size}\n{stat.st_mtime_ns}\n{uid}\n".encode())
    digest.update(("\n".join(preload) + "\n" + "\n".join(initdb_args)).encode())
    package = resources.files("supagate.postgres")
    for folder in ("sql", "extensions"):
        for entry in sorted(package.joinpath(folder).iterdir(), key=lambda e: e.name):
            if entry.name.endswith((".sql", ".control")):
                digest.update(entry.name.encode() + b"\0" + entry.read_bytes())
    return digest.hexdigest()[:20]


def cached(name: str) -> Path | None:
    """The data directory of a finished template, or None."""
    folder = cache_dir() / name
    if (folder / "READY").exists() and (folder / "data" / "PG_VERSION").exists():
        os.utime(folder)  # recently used: not pruned
        return folder / "data"
    return None


@contextlib.contextmanager
def build_lock(name: str):
    """Held while one process builds the template of `name`; others wait, then reuse it."""
    with open(cache_dir() / f".{name}.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def store(name: str, data: Path) -> Path:
    """Copy a cleanly shut down data directory into the cache as the template of `name`."""
    staging = cache_dir() / f".{name}.{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    copy_data(data, staging / "data")
    (staging / "READY").write_text(f"{time.time()}\n")
    final = cache_dir() / name
    shutil.rmtree(final, ignore_errors=True)  # a broken one (no READY) is replaced
    os.rename(staging, final)
    _prune(keep=name)
    return final / "data"


def discard(name: str) -> None:
    """Forget a template that failed to start, so the next cluster builds it again."""
    shutil.rmtree(cache_dir() / name, ignore_errors=True)


def copy_data(source: Path, target: Path) -> None:
    """Copy a data directory keeping modes and owners (the server refuses others)."""
    done = subprocess.run(["cp", "-a", str(source), str(target)], capture_output=True, text=True)
    if done.returncode != 0:
        raise TemplateError(f"failed to copy the cluster template {source}: {done.stderr.strip()}\n"
                                    f"Remove {source.parent} (it is rebuilt) or set SUPAGATE_CACHE_DIR.")


def _prune(keep: str) -> None:
    now = time.time()
    for folder in cache_dir().iterdir():
        if folder.name == keep or not folder.is_dir():
            continue
        with contextlib.suppress(OSError):
            if now - folder.stat().st_mtime > PRUNE_AFTER_S:
                shutil.rmtree(folder, ignore_errors=True)
