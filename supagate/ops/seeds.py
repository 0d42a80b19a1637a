"""Seed data, below production only, with the Supabase CLI's own bookkeeping.

Every path that loads seed files (the `supabase:Seed` resource, `supagate test`, `supagate
local`) runs them through `apply`, so the rules live here once:
- a file holds data only (INSERT, UPDATE, DELETE, SELECT), checked before anything runs: no
  DDL, and nothing that ends the transaction or changes the session (BEGIN, COMMIT, SET);
- each file runs on a connection of its own (no setting or role reaches the next file), in
  one transaction that asks the database (ops.assert_not_production) before the file and
  again after it, records the file in `supabase_migrations.seed_files` (path as the CLI
  writes it, SHA-256 of its content, so `supabase db push --include-seed` and we agree both
  ways), and commits only if the file left the transaction and the role as it found them;
- a database supagate did not start must be able to answer: without the ops schema it
  cannot say it is not production, and the seed is refused.
"""

from __future__ import annotations

import glob
import hashlib
import tomllib
from dataclasses import dataclass
from pathlib import Path

from supagate.errors import BadInput, Failed

ALLOWED = {"InsertStmt": "INSERT", "UpdateStmt": "UPDATE", "DeleteStmt": "DELETE", "SelectStmt": "SELECT"}
NOT_DATA = {"TransactionStmt": "BEGIN/COMMIT/ROLLBACK/SAVEPOINT", "VariableSetStmt": "SET/RESET",
            "DiscardStmt": "DISCARD", "CallStmt": "CALL", "DoStmt": "DO"}
BOOKKEEPING = ("create schema if not exists supabase_migrations; "
               "create table if not exists supabase_migrations.seed_files (path text not null primary key, "
               "hash text not null)")


# The database's answer, asked first and last inside each seed's transaction.
GUARD = "select ops.assert_not_production()"
# A database supagate started (throwaway, or `supagate db start`'s) is not production unless
# the app's own migrations marked it so: only then is there anything to ask.
GUARD_OWN_DATABASE = ("do $$ begin if to_regprocedure('ops.assert_not_production()') is not null then "
                      "perform ops.assert_not_production(); end if; end $$")
# Who runs the file and in which transaction: the file must leave both as it found them.
SESSION = "select pg_current_xact_id()::text, current_user, session_user"


class SeedError(BadInput):
    """A seed file that cannot run: named with its line and the fix."""


class SeedRefused(Failed):
    """A seed the database refused (production, or it could not say), or that failed."""


@dataclass(frozen=True)
class SeedFile:
    path: str  # as the CLI records it: relative to the project root
    sql: str

    @property
    def hash(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def seed_files(project: Path) -> list[Path]:
    """What `supabase db reset` seeds: config.toml's [db.seed] sql_paths (globs, relative to
    supabase/), else supabase/seed.sql; only when seeding is enabled."""
    supabase = project / "supabase"
    config_path = supabase / "config.toml"
    try:
        seed = (tomllib.loads(config_path.read_text()).get("db") or {}).get("seed") or {} \
            if config_path.exists() else {}
    except tomllib.TOMLDecodeError as exc:
        raise BadInput(f"{config_path}: not valid TOML ({exc})\nFix the file (supabase init writes a valid one).") from None
    if seed.get("enabled") is False:
        return []
    found: list[Path] = []
    for pattern in seed.get("sql_paths") or ["./seed.sql"]:
        found += [Path(m) for m in sorted(glob.glob(str(supabase / pattern))) if Path(m) not in found]
    return found


def seed_paths(project: Path, declared: tuple[str, ...]) -> list[str]:
    """The stack's paths (globs, relative to supabase/), else what `supabase db reset` seeds
    (config.toml's [db.seed]); relative to the project root, as the CLI records them."""
    if declared:
        paths = [Path(m) for pattern in declared for m in sorted(glob.glob(str(project / "supabase" / pattern)))]
    else:
        paths = seed_files(project)
    found: list[str] = []
    for path in paths:
        relative = path.resolve().relative_to(project.resolve()).as_posix()
        if relative not in found:
            found.append(relative)
    return found


def load(project: Path, declared: tuple[str, ...]) -> list[SeedFile]:
    files = [SeedFile(path, (project / path).read_text()) for path in seed_paths(project, declared)]
    _refuse_problems(files)
    return files


def _refuse_problems(files: list[SeedFile]) -> None:
    problems = [p for f in files for p in dml_problems(f)]
    if problems:
        raise SeedError("\n".join(problems) + "\nSeeds hold data only: move schema changes into a migration (and "
                        "session settings out: each seed runs in one transaction of its own).")


def dml_problems(seed: SeedFile) -> list[str]:
    import pglast

    from supagate.migrations.splitter import split_statements as split

    problems = []
    for statement in split(seed.sql):
        try:
            nodes = pglast.parse_sql(statement.text)
        except pglast.parser.ParseError as exc:
            problems.append(f"{seed.path}:{statement.line}: does not parse ({exc})")
            continue
        for node in nodes:
            kind = type(node.stmt).__name__
            if kind not in ALLOWED or (kind == "SelectStmt" and node.stmt.intoClause is not None):
                shown = NOT_DATA.get(kind, kind.removesuffix("Stmt").upper())
                problems.append(f"{seed.path}:{statement.line}: {shown} is not data "
                                "(seeds run INSERT, UPDATE, DELETE and SELECT only)")
    return problems


def recorded(conn) -> dict[str, str]:
    if conn.execute("select to_regclass('supabase_migrations.seed_files')").fetchone()[0] is None:
        return {}
    return dict(conn.execute("select path, hash from supabase_migrations.seed_files").fetchall())


def apply(url: str, files: list[SeedFile], *, own_database: bool = False) -> list[str]:
    """Run every file whose hash is not the recorded one; returns their paths. `own_database`:
    a database supagate started itself (see GUARD_OWN_DATABASE)."""
    from supagate.postgres.connect import connect

    _refuse_problems(files)  # every file, before any runs
    with connect(url, engine=True) as conn:
        done = recorded(conn)
    ran = []
    for seed in files:
        if done.get(seed.path) != seed.hash:
            _run(url, seed, GUARD_OWN_DATABASE if own_database else GUARD)
            ran.append(seed.path)
    return ran


def _run(url: str, seed: SeedFile, guard: str) -> None:
    import psycopg

    from supagate.postgres.connect import connect

    with connect(url, engine=True) as conn:  # a session of its own: nothing a file sets reaches the next
        try:
            with conn.transaction():
                _ask(conn, guard, seed)
                before = conn.execute(SESSION).fetchone()
                conn.execute(BOOKKEEPING)
                conn.execute(seed.sql)
                if conn.execute(SESSION).fetchone() != before:
                    raise SeedRefused(f"refused to seed {seed.path}: it changed the transaction or the role it runs "
                                      "in; nothing of it was kept\nA seed holds data only: remove set_config "
                                      "calls and anything that commits.")
                _ask(conn, guard, seed)  # a file that marked the database production is undone with it
                conn.execute("insert into supabase_migrations.seed_files (path, hash) values (%s, %s) "
                             "on conflict (path) do update set hash = excluded.hash", (seed.path, seed.hash))
        except psycopg.Error as exc:
            raise SeedRefused(f"failed to load {seed.path}: {str(exc).strip()}\nFix the file; nothing of it was "
                              "kept.") from None


def _ask(conn, guard: str, seed: SeedFile) -> None:
    """The database's answer; one it cannot give is a refusal too."""
    import psycopg

    try:
        conn.execute(guard)
    except psycopg.errors.RaiseException as exc:
        raise SeedRefused(f"refused to seed {seed.path}: {exc.diag.message_primary}\n"
                          "Check the database URL (the stack's dbUrl, --db-url or SUPABASE_DB_URL): it points at "
                          "production.") from None
    except psycopg.Error as exc:
        raise SeedRefused(f"refused to seed {seed.path}: the database cannot say whether it is production "
                          f"({exc.diag.message_primary})\nSeed a database with the ops schema (supagate ops init, "
                          "then deploy: the stack marks its tier), the local one (supagate db start) or a "
                          "throwaway one (leave out --db-url and SUPABASE_DB_URL).") from None


def refuse_production(url: str) -> None:
    """Before anything touches a database supagate did not start: refuse one marked production
    (the seeds would be refused later; the migrations and tests must not run there either)."""
    import psycopg

    from supagate.postgres.connect import connect

    with connect(url) as conn:
        try:
            conn.execute(GUARD_OWN_DATABASE)
        except psycopg.errors.RaiseException as exc:
            raise SeedRefused(f"refused to test on this database: {exc.diag.message_primary}\nCheck the database "
                              "URL (--db-url or SUPABASE_DB_URL): it points at production.") from None


def production_refs(project: Path) -> dict[str, str]:
    """projectRef -> stack file, for every stack file of tier production in the project."""
    from supagate.config.loading import SettingsError, read_stack_config

    refs = {}
    for path in sorted(project.glob("Pulumi.*.yaml")):
        try:
            config = read_stack_config(path)
        except SettingsError:
            continue
        if config.get("supabase-platform:tier") == "production" and config.get("supabase-platform:projectRef"):
            refs[str(config["supabase-platform:projectRef"])] = path.name
    return refs
