"""Migration history, and the one comparison of what a database applied with the files.

History is the Supabase CLI's own table, `supabase_migrations.schema_migrations`
(version, name, the file's statements); our bookkeeping (checksum, down script, who and
when) sits beside it in `supabase_migrations.supagate_migrations`.

`compare` decides, for the runner, the gates' history rules and the Migrations provider
alike: which files are pending, which applied file changed, which new file is older than
the newest applied one, which applied version has no file, and which rows the Supabase
CLI applied with the very statements of the file (adopted, not edited)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

from supagate.migrations.files import Migration

# The effective checksum of a row `supabase db push` applied with other statements than the file's.
DIFFERENT_STATEMENTS = "<statements differ from the file>"


@dataclass(frozen=True)
class Applied:
    version: str
    name: str | None
    statements: tuple[str, ...]
    checksum: str | None = None  # None when another tool (supabase db push) applied it
    down_sql: str | None = None
    applied_at: str | None = None
    applied_by: str | None = None


def read_history(conn) -> dict[str, Applied]:
    exists = conn.execute(
        "SELECT to_regclass('supabase_migrations.schema_migrations') IS NOT NULL, "
        "to_regclass('supabase_migrations.supagate_migrations') IS NOT NULL").fetchone()
    if not exists[0]:
        return {}
    if exists[1]:
        rows = conn.execute(
            "SELECT h.version, h.name, h.statements, s.checksum, s.down_sql, "
            "       s.applied_at::text, s.applied_by "
            "FROM supabase_migrations.schema_migrations h "
            "LEFT JOIN supabase_migrations.supagate_migrations s USING (version)").fetchall()
    else:
        rows = [r + (None, None, None, None) for r in conn.execute(
            "SELECT version, name, statements FROM supabase_migrations.schema_migrations").fetchall()]
    return {r[0]: Applied(r[0], r[1], tuple(r[2] or ()), r[3], r[4], r[5], r[6]) for r in rows}


def applied_checksums(history: Mapping[str, Applied], migrations: list[Migration]) -> dict[str, str]:
    """version -> checksum of what was applied. A row `supabase db push` wrote has no
    checksum of ours: it counts as the file's when its statements are the file's."""
    local = {m.version: m for m in migrations}
    checksums = {}
    for version, row in history.items():
        if row.checksum is not None:
            checksums[version] = row.checksum
        elif version in local and list(row.statements) == local[version].statement_texts:
            checksums[version] = local[version].checksum
        else:
            checksums[version] = DIFFERENT_STATEMENTS
    return checksums


@dataclass
class Comparison:
    pending: list[Migration] = field(default_factory=list)  # not applied, in order
    edited: list[Migration] = field(default_factory=list)  # applied, and the file changed since
    late: list[Migration] = field(default_factory=list)  # pending, older than the newest applied
    missing: list[str] = field(default_factory=list)  # applied versions with no file
    newest: str = ""  # the newest applied version

    def problems(self, include_all: bool = False, allow_missing: bool = False,
                 applied: Mapping[str, str | None] | None = None) -> list[str]:
        """What stops a run, one paragraph each, with the next step."""
        found = []
        if self.missing and not allow_missing:
            found.append(
                "the database has migrations that are not in the migrations directory: " + ", ".join(self.missing)
                + "\nRestore those files (git log -- supabase/migrations), or, if they were removed on purpose, "
                  "run `supabase migration repair --status reverted " + " ".join(self.missing) + "`.")
        for m in self.edited:
            was = (applied or {}).get(m.version)
            detail = ("its statements differ from those `supabase db push` recorded" if was in (None, DIFFERENT_STATEMENTS)
                      else f"applied with sha256 {was[:12]}, the file now hashes to {m.checksum[:12]}")
            where = m.path or m.filename
            found.append(f"{where} changed after it was applied ({detail})\n"
                         f"Restore the file as applied (git checkout <commit> -- {where}), put the change in a new "
                         f"migration, or accept the file as applied with `supagate migrate --repair {m.version}`.")
        if self.late and not include_all:
            found.append(
                "new migrations are older than the newest applied one (" + self.newest + "): "
                + ", ".join(m.filename for m in self.late)
                + "\nGive them a newer timestamp, or apply them anyway with --include-all "
                  "(as `supabase db push --include-all`).")
        return found


def compare(applied: Mapping[str, str | None], migrations: list[Migration]) -> Comparison:
    """`applied`: version -> effective checksum (applied_checksums), or None when unknown
    (state written before checksums were kept), which is never counted as an edit."""
    local = {m.version: m for m in migrations}
    result = Comparison(newest=max(applied, default=""))
    result.missing = sorted(v for v in applied if v not in local)
    for m in migrations:
        if m.version in applied:
            if applied[m.version] is not None and applied[m.version] != m.checksum:
                result.edited.append(m)
        else:
            result.pending.append(m)
            if m.version < result.newest:
                result.late.append(m)
    return result


def adoptable(history: Mapping[str, Applied], migrations: list[Migration]) -> list[Migration]:
    """Files `supabase db push` applied with the very same statements: record our bookkeeping."""
    return [m for m in migrations if m.version in history and history[m.version].checksum is None
            and list(history[m.version].statements) == m.statement_texts]
