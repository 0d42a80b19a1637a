"""Seed data, below production only, with the Supabase CLI's own bookkeeping.

A seed file runs in one transaction with its `supabase_migrations.seed_files` row (path as
the CLI writes it, `supabase/seed.sql`, and the SHA-256 of its content), so `supabase db
push --include-seed` and the `supabase:Seed` resource agree in both directions, and a file
runs again whenever its content changes. Every transaction first asks the database
(ops.assert_not_production): a staging stack whose dbUrl points at production by mistake
is refused there, whatever the stack says. Seeds hold data only (INSERT, UPDATE, DELETE,
SELECT of functions), never DDL.
"""

from __future__ import annotations

import glob
import hashlib
from dataclasses import dataclass
from pathlib import Path

from supagate.errors import BadInput

ALLOWED = {"InsertStmt": "INSERT", "UpdateStmt": "UPDATE", "DeleteStmt": "DELETE", "SelectStmt": "SELECT"}
BOOKKEEPING = ("create schema if not exists supabase_migrations; "
               "create table if not exists supabase_migrations.seed_files (path text not null primary key, "
               "hash text not null)")


class SeedError(BadInput):
    """A seed file that cannot run: named with its line and the fix."""


@dataclass(frozen=True)
class SeedFile:
    path: str  # as the CLI records it: relative to the project root
    sql: str

    @property
    def hash(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def seed_paths(project: Path, declared: tuple[str, ...]) -> list[str]:
    """The stack's paths (globs, relative to supabase/), else what `supabase db reset` seeds
    (config.toml's [db.seed]); relative to the project root, as the CLI records them."""
    from supagate.postgres.app_tests import seed_files

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
    problems = [p for f in files for p in dml_problems(f)]
    if problems:
        raise SeedError("\n".join(problems) + "\nSeeds hold data only: move schema changes into a migration.")
    return files


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
                problems.append(f"{seed.path}:{statement.line}: {kind.removesuffix('Stmt').upper()} is not data "
                                "(seeds run INSERT, UPDATE, DELETE and SELECT only)")
    return problems


def recorded(conn) -> dict[str, str]:
    if conn.execute("select to_regclass('supabase_migrations.seed_files')").fetchone()[0] is None:
        return {}
    return dict(conn.execute("select path, hash from supabase_migrations.seed_files").fetchall())


def apply(conn, files: list[SeedFile]) -> list[str]:
    """Run every file whose hash is not the recorded one; returns their paths."""
    conn.execute(BOOKKEEPING)
    done = recorded(conn)
    ran = []
    for seed in files:
        if done.get(seed.path) == seed.hash:
            continue
        with conn.transaction():
            conn.execute("select ops.assert_not_production()")
            conn.execute(seed.sql)
            conn.execute("insert into supabase_migrations.seed_files (path, hash) values (%s, %s) "
                         "on conflict (path) do update set hash = excluded.hash", (seed.path, seed.hash))
        ran.append(seed.path)
    return ran


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
