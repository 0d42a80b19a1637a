"""The history rules of `supagate check`: migration-edited and migration-out-of-order
against a target database's history, not-promoted against staging's. Both databases are
only read. The decision is the one comparison of supagate/migrations/history.py."""

from __future__ import annotations

from supagate.findings import Finding
from supagate.gates.rules import migration_edited, migration_out_of_order, not_promoted
from supagate.migrations.files import Migration
from supagate.migrations.history import applied_checksums, compare, read_history
from supagate.postgres.connect import connect


def database_checksums(url: str, migrations: list[Migration]) -> dict[str, str]:
    with connect(url) as conn:  # read only: nothing is written to a database we only compare with
        return applied_checksums(read_history(conn), migrations)


def history_findings(migrations: list[Migration], applied: dict[str, str], target: str) -> list[Finding]:
    comparison = compare(applied, migrations)
    return sorted([migration_edited.finding(m, target) for m in comparison.edited]
                  + [migration_out_of_order.finding(m, target, comparison.newest) for m in comparison.late],
                  key=lambda f: f.object)


def promotion_findings(migrations: list[Migration], staged: dict[str, str] | None, staging: str) -> list[Finding]:
    return not_promoted.findings(migrations, staged, staging)
