"""The one comparison of history with files (supagate/migrations/history.py), used by the
runner, the gates' history rules and the Migrations provider, on rows we wrote and rows
`supabase db push` wrote."""

from __future__ import annotations

import psycopg
import pytest

from components.providers.migrations import MigrationsProvider
from supagate.gates.history import history_findings
from supagate.migrations.files import load_migrations, parse_migration
from supagate.migrations.history import Applied, DIFFERENT_STATEMENTS, applied_checksums, compare
from supagate.offline.resource_types import migration_inputs
from tests.conftest import write_migrations

A = parse_migration("20250101000000", "a", "create table a (id int);\n")
B = parse_migration("20250102000000", "b", "create table b (id int);\n")
LATE = parse_migration("20250101120000", "late", "create table late (id int);\n")


def test_compare_names_pending_edited_late_and_missing():
    edited_a = parse_migration(A.version, A.name, "create table a (id bigint);\n")
    result = compare({A.version: A.checksum, "20241231000000": "x"}, [edited_a, B])
    assert [m.version for m in result.edited] == [A.version]
    assert [m.version for m in result.pending] == [B.version]
    assert result.missing == ["20241231000000"] and result.late == []
    late = compare({A.version: A.checksum, B.version: B.checksum}, [A, LATE, B])
    assert [m.version for m in late.late] == [LATE.version]
    assert compare({A.version: None}, [edited_a]).edited == []  # unknown (old state) is never an edit


def test_rows_the_cli_wrote_count_as_the_file_when_the_statements_match():
    cli_row = Applied(A.version, A.name, tuple(A.statement_texts))
    assert applied_checksums({A.version: cli_row}, [A]) == {A.version: A.checksum}
    edited = parse_migration(A.version, A.name, "create table a (id bigint);\n")
    assert applied_checksums({A.version: cli_row}, [edited]) == {A.version: DIFFERENT_STATEMENTS}
    findings = history_findings([edited], applied_checksums({A.version: cli_row}, [edited]), "prod")
    assert [f.rule for f in findings] == ["migration-edited"]


def test_provider_diff_stops_on_an_edited_file_the_supabase_cli_applied(db_url, tmp_path):
    src = write_migrations(tmp_path / "m", {"20250101000000_a.sql": "create table a (id int);\n"})
    migrations = load_migrations(src)
    with psycopg.connect(db_url, autocommit=True) as conn:  # as `supabase db push` records it
        conn.execute("create schema supabase_migrations; create table supabase_migrations.schema_migrations "
                     "(version text primary key, statements text[], name text)")
        conn.execute("insert into supabase_migrations.schema_migrations values (%s, %s, %s)",
                     (migrations[0].version, migrations[0].statement_texts, migrations[0].name))
    props = {"db_url": db_url, "migrations": migration_inputs(migrations)}
    refreshed = MigrationsProvider().read("migrations", props).outs
    assert refreshed["applied"][0]["checksum"] == migrations[0].checksum and refreshed["drift"] == []
    assert MigrationsProvider().diff("migrations", refreshed, props).changes is False
    edited = write_migrations(tmp_path / "e", {"20250101000000_a.sql": "create table a (id bigint);\n"})
    with pytest.raises(Exception, match="20250101000000_a.sql changed after it was applied"):
        MigrationsProvider().diff("migrations", refreshed,
                                  {"db_url": db_url, "migrations": migration_inputs(load_migrations(edited))})
