"""A throwaway PostgreSQL 15 cluster shaped like a hosted Supabase database
(postgres/supabase_shape.py: roles, auth, storage, Vault, realtime, extensions).

Used by the quick start, the tests, the shadow database of `supagate check` and the
benchmarks. The cluster listens on a free loopback port and asks for its own random password
(cluster_access.py: who gets in, and which OS user it runs as), and is removed on exit, after
Ctrl-C, or when the process that started it dies (the postmaster gets SIGQUIT through
PR_SET_PDEATHSIG, set by setpriv).
"""

from __future__ import annotations

from supagate.errors import Failed

import atexit
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

from supagate.gates.catalog.model import DEFAULT_EXPOSED_SCHEMAS
from supagate.postgres import cluster_access, cluster_template
from supagate.postgres.supabase_shape import expose_schemas, prepare_supabase_database, private_install

_PREFIX = "supagate-pg-"
_PREFIX_KEPT = "supagate-db-"  # not swept: `supagate db stop` removes it
# The access rules are rewritten per cluster (cluster_access.write_rules); these match them.
INITDB_ARGS = ["-U", "postgres", "--auth-local=trust", "--auth-host=scram-sha-256", "--encoding=UTF8",
               "--locale=C.UTF-8", "--no-sync"]
MEMORY_DIR = Path("/dev/shm")
MEMORY_MIN_FREE = 1 << 30  # leave room for the server's own shared memory segments


class EmbeddedPostgresError(Failed):
    pass


def find_bindir() -> Path:
    """The directory holding initdb and postgres (PostgreSQL 15 preferred)."""
    override = os.environ.get("SUPAGATE_PG_BINDIR")
    candidates = [Path(override)] if override else []
    candidates.append(Path("/usr/lib/postgresql/15/bin"))
    found = shutil.which("initdb")
    if found:
        candidates.append(Path(found).resolve().parent)
    for candidate in candidates:
        if (candidate / "initdb").exists() and (candidate / "postgres").exists():
            return candidate
    raise EmbeddedPostgresError(
        "failed to find PostgreSQL 15: no initdb/postgres in /usr/lib/postgresql/15/bin or on PATH\n"
        "Install it (apt-get install postgresql-15) or set SUPAGATE_PG_BINDIR."
    )


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _as_server_user(args: list[str], user, die_with_parent: bool) -> tuple[list[str], dict]:
    """The command and Popen arguments that run `args` as the cluster's OS user and, for a
    throwaway cluster, send it SIGQUIT when the process that started it dies (kill -9
    included). util-linux's setpriv does both between fork and exec: Python's own
    `user=`/`preexec_fn` make it fork() rather than vfork(), and a fork() from a process
    running gRPC threads (the policy pack, which starts shadows) ran gRPC's fork handlers in
    the child, which died with SIGSEGV before exec. Without setpriv: Popen's `user=`."""
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        return args, ({"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []} if user else {})
    prefix = [setpriv]
    if user is not None:
        prefix += [f"--reuid={user.pw_uid}", f"--regid={user.pw_gid}", "--clear-groups"]
    if die_with_parent:
        prefix += ["--pdeathsig", "QUIT"]
    return [*prefix, "--", *args], {}


def _has_extension(bindir: Path, name: str) -> bool:
    share = bindir.parent.parent.parent / "share" / "postgresql" / bindir.parent.name / "extension"
    candidates = [share, Path(f"/usr/share/postgresql/{bindir.parent.name}/extension")]
    return any((c / f"{name}.control").exists() for c in candidates)


def cluster_base(persistent: bool = False) -> Path:
    """Where a cluster's directory goes. A throwaway cluster lives in memory (tmpfs) when
    there is room: on this machine's disk, creating and removing the files of 2,000
    migrations' tables costs 2.7 s, in memory 1.0 s. `supagate db start` keeps its
    cluster on disk. SUPAGATE_PG_TMPDIR overrides both."""
    override = os.environ.get("SUPAGATE_PG_TMPDIR")
    if override:
        return Path(override)
    if not persistent and MEMORY_DIR.is_dir() and os.access(MEMORY_DIR, os.W_OK):
        try:
            stats = os.statvfs(MEMORY_DIR)
        except OSError:
            stats = None
        # The cluster runs a hard link of `postgres` from its folder: a noexec mount (a
        # hardened /dev/shm) cannot hold it.
        if (stats is not None and stats.f_bavail * stats.f_frsize >= MEMORY_MIN_FREE
                and not stats.f_flag & getattr(os, "ST_NOEXEC", 8)):
            return MEMORY_DIR
    return Path(tempfile.gettempdir())


def sweep_stale_clusters() -> None:
    """Remove clusters left behind by a process that was killed outright: those whose owner
    is gone and whose postmaster is gone too. The owner decides, not postmaster.pid: during
    initdb short-lived bootstrap backends come and go and leave that file behind them."""
    bases = {Path(tempfile.gettempdir()), cluster_base()}
    for path in [p for base in bases for p in base.glob(f"{_PREFIX}*")]:
        try:
            if not (path / "owner.pid").exists():
                if time.time() - path.stat().st_mtime > 60:  # never got as far as naming its owner
                    shutil.rmtree(path, ignore_errors=True)
                continue
            if pid_alive(int((path / "owner.pid").read_text())):
                continue
            pidfile = path / "data" / "postmaster.pid"
            if pidfile.exists() and pid_alive(int(pidfile.read_text().split()[0])):
                continue
            shutil.rmtree(path, ignore_errors=True)
        except (FileNotFoundError, ValueError, IndexError):
            continue  # removed, or being written, by its owner right now
        except PermissionError:
            continue  # another user's private cluster


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid exists (it may belong to another user)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclass
class EmbeddedPostgres:
    """Start with `start()` (or use as a context manager); `url` is ready to connect. It
    names the cluster's passfile, never the password, so it may go on a command line."""

    exposed_schemas: tuple[str, ...] = DEFAULT_EXPOSED_SCHEMAS
    port: int = 0
    root: Path | None = None
    persistent: bool = False  # outlives this process (`supagate db start`); local_db.py stops it
    _proc: subprocess.Popen | None = field(default=None, repr=False)
    _passfile: Path | None = field(default=None, repr=False)
    _password: str | None = field(default=None, repr=False)  # until ready() sets it
    _launch: tuple | None = field(default=None, repr=False)
    _template_key: str | None = field(default=None, repr=False)
    _build: bool = field(default=False, repr=False)  # initdb and shape it (the template's own build)

    @property
    def url(self) -> str:
        return self.url_for("postgres")

    def url_for(self, dbname: str) -> str:
        if self._build:  # the template's builder has no password and no TCP
            return cluster_access.socket_url(self.root, self.port, dbname)
        return cluster_access.tcp_url(self.port, dbname, self._passfile)

    def __enter__(self) -> "EmbeddedPostgres":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self) -> "EmbeddedPostgres":
        return self.launch().ready()

    def launch(self) -> "EmbeddedPostgres":
        """Copy the template and start the server without waiting for it: the caller does
        other work (the check's static analysis) while it boots, then calls `ready()`."""
        sweep_stale_clusters()
        bindir = find_bindir()
        user = cluster_access.server_user()
        self.root = Path(tempfile.mkdtemp(prefix=_PREFIX_KEPT if self.persistent else _PREFIX,
                                          dir=cluster_base(self.persistent)))
        data = self.root / "data"
        if not self.persistent:
            (self.root / "owner.pid").write_text(str(os.getpid()))
            atexit.register(self.stop)
            _stop_on_sigterm()
        if user is not None:
            os.chown(self.root, user.pw_uid, user.pw_gid)
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env["LC_ALL"] = "C.UTF-8"
        # pg_cron schedules maintenance jobs and alert evaluation; pg_stat_statements feeds
        # the slow-query alerts. Both are preloaded on Supabase too.
        preload = [lib for lib in ("pg_cron", "pg_stat_statements") if _has_extension(bindir, lib)]
        template_key = None
        if self._build:
            self._initdb(bindir, data, env, user)
        else:
            template_key = cluster_template.key(bindir, preload, os.geteuid() if user is None else user.pw_uid,
                                                INITDB_ARGS)
            cluster_template.copy_data(self._template(template_key), data)
        cluster_access.write_rules(data, user)
        self.port = self.port or free_port()
        if not self._build:
            self._passfile, self._password = cluster_access.write_passfile(self.root, self.port)
        settings = {
            "listen_addresses": "" if self._build else "127.0.0.1",
            "port": str(self.port),
            "unix_socket_directories": str(self.root),  # mkdtemp made it 0700
            "unix_socket_permissions": "0700",
            # A throwaway cluster: durability buys nothing here.
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
            "max_connections": "100",
        }
        if preload:
            settings["shared_preload_libraries"] = ",".join(preload)
        if "pg_cron" in preload:
            settings["cron.database_name"] = "postgres"
            settings["cron.host"] = str(self.root)  # jobs connect over the private socket, not TCP
        args = [str(private_install(bindir, self.root)), "-D", str(data)]
        for key, value in settings.items():
            args += ["-c", f"{key}={value}"]
        self._launch = (args, env, user)
        self._template_key = template_key
        self._spawn(wait=False)
        return self

    def ready(self) -> "EmbeddedPostgres":
        """Wait for the launched server to accept connections, then give it its password
        (TCP refuses everyone until then) and its settings."""
        try:
            conn = self._wait_ready()
        except EmbeddedPostgresError:
            if self._template_key:  # a damaged template: build it again next time
                cluster_template.discard(self._template_key)
            raise
        with conn:
            if self._password is not None:
                cluster_access.set_password(conn, self._password)
                self._password = None
            if not self._build:
                expose_schemas(conn, self.exposed_schemas)
        if self._build:
            prepare_supabase_database(self.url, self.exposed_schemas)
        return self

    def _initdb(self, bindir: Path, data: Path, env: dict, user) -> None:
        command, kwargs = _as_server_user([str(bindir / "initdb"), "-D", str(data), *INITDB_ARGS], user, False)
        init = subprocess.run(command, capture_output=True, text=True, env=env, **kwargs)
        if init.returncode != 0:
            self.stop()
            raise EmbeddedPostgresError(f"failed to initialise a cluster: {init.stderr.strip()}")

    def _template(self, template_key: str) -> Path:
        """The machine's template data directory for this key, built on first use."""
        found = cluster_template.cached(template_key)
        if found is not None:
            return found
        with cluster_template.build_lock(template_key):
            found = cluster_template.cached(template_key)
            if found is not None:
                return found
            builder = EmbeddedPostgres(_build=True).start()
            try:
                with psycopg.connect(builder.url, autocommit=True) as conn:
                    conn.execute(f"create database {cluster_template.TEMPLATE_DB} is_template true")
                prepare_supabase_database(builder.url_for(cluster_template.TEMPLATE_DB))
                builder.shutdown_cleanly()
                return cluster_template.store(template_key, builder.root / "data")
            finally:
                builder.stop()

    def shutdown_cleanly(self) -> None:
        """A fast shutdown (with a checkpoint), so the data directory can be copied as is."""
        self._proc.send_signal(signal.SIGINT)
        self._proc.wait(timeout=60)

    def _spawn(self, wait: bool = True) -> None:
        args, env, user = self._launch
        command, kwargs = _as_server_user(args, user, not self.persistent)
        log = open(self.root / "postgres.log", "ab")
        self._proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env,
                                      start_new_session=True, **kwargs)
        log.close()
        if wait:
            self._wait_ready().close()

    def crash(self) -> None:
        """Stop the server without a checkpoint (immediate shutdown: every backend is killed,
        as in a crash) and start it again on the same data directory, which then recovers
        from its WAL. For the fault tests."""
        self._proc.send_signal(signal.SIGQUIT)
        self._proc.wait(timeout=30)
        self._spawn()

    def _wait_ready(self, timeout: float = 30.0) -> psycopg.Connection:
        """A connection over the socket once the server takes one (the caller closes it)."""
        over_socket = cluster_access.socket_url(self.root, self.port, "postgres")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                tail = (self.root / "postgres.log").read_text(errors="replace")[-2000:]
                self.stop()
                raise EmbeddedPostgresError(f"failed to start PostgreSQL: it exited\n{tail}")
            try:
                return psycopg.connect(over_socket, autocommit=True, connect_timeout=2)
            except psycopg.OperationalError:
                time.sleep(0.05)
        self.stop()
        raise EmbeddedPostgresError(f"failed to start PostgreSQL: not ready after {timeout:.0f} s")

    def create_database(self, name: str) -> str:
        """A fresh Supabase-shaped database in this cluster (a clone of the shaped template
        database); returns its URL."""
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(f'create database "{name}" template {cluster_template.TEMPLATE_DB}')
        with psycopg.connect(self.url_for(name), autocommit=True) as conn:
            expose_schemas(conn, self.exposed_schemas)
        return self.url_for(name)

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            try:
                # SIGQUIT: immediate shutdown; nothing here is worth a checkpoint.
                proc.send_signal(signal.SIGQUIT)
                proc.wait(timeout=15)
            except (subprocess.TimeoutExpired, PermissionError):
                proc.kill()
                proc.wait()
        if self.root is not None:
            shutil.rmtree(self.root, ignore_errors=True)
            self.root = None


_sigterm_installed = False


def _stop_on_sigterm() -> None:
    """Turn SIGTERM into a normal exit so atexit stops the cluster."""
    global _sigterm_installed
    if _sigterm_installed or signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        return
    try:
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
        _sigterm_installed = True
    except ValueError:  # not the main thread
        pass
