import pytest

from supagate.migrations.files import MigrationFileError, load_migrations, parse_migration
from tests.conftest import APP_MIGRATIONS, write_migrations


def test_app_migrations_load_in_cli_order_with_down_scripts():
    migrations = load_migrations(APP_MIGRATIONS)
    versions = [m.version for m in migrations]
    assert versions == sorted(versions) and len(versions) >= 7
    assert all(m.down_sql for m in migrations)
    concurrent = [m for m in migrations if not m.transactional]
    assert [m.name for m in concurrent] == ["engagement_events_type_index"]


def test_names_follow_the_cli_pattern_and_others_are_skipped_with_a_warning(tmp_path):
    write_migrations(tmp_path, {"20240101000000_a.sql": "select 1;", "1_short.sql": "select 1;",
                                "notes.md": "x", "abc_bad.sql": "select 1;"})
    warnings = []
    migrations = load_migrations(tmp_path, warn=warnings.append)
    assert [(m.version, m.name) for m in migrations] == [("1", "short"), ("20240101000000", "a")]
    assert any("abc_bad.sql" in w for w in warnings)


def test_down_script_beside_migrations_is_refused_with_the_reason(tmp_path):
    write_migrations(tmp_path, {"20240101000000_a.sql": "create table a();",
                                "20240101000000_a.down.sql": "drop table a;"})
    with pytest.raises(MigrationFileError, match=r"supabase db push.*\n.*down/20240101000000_a.down.sql"):
        load_migrations(tmp_path)


def test_orphan_down_script_and_duplicate_version_are_refused(tmp_path):
    write_migrations(tmp_path, {"20240101000000_a.sql": "select 1;", "20240101000000_b.sql": "select 2;",
                                "down/20240102000000_gone.down.sql": "select 3;"})
    with pytest.raises(MigrationFileError) as err:
        load_migrations(tmp_path)
    assert "also used by" in str(err.value) and "no migration 20240102000000_gone.sql" in str(err.value)


def test_mixing_concurrent_index_with_other_statements_is_rejected_before_running():
    with pytest.raises(MigrationFileError, match=r"x\.sql:2: .*cannot run inside a transaction.*line 1"):
        parse_migration("1", "x", "create table t (id int);\ncreate index concurrently i on t (id);", "x.sql")


@pytest.mark.parametrize("sql", [
    "create index concurrently i on t (id);",
    "drop index concurrently i;",
    "reindex (concurrently) index i;",
    "vacuum analyze t;",
    "set lock_timeout = '1s';\ncreate index concurrently i on t (id);",
])
def test_non_transactional_files_are_detected(sql):
    assert parse_migration("1", "x", sql).transactional is False


def test_begin_commit_are_skipped_and_rollback_refused():
    m = parse_migration("1", "x", "begin;\ncreate table t();\ncommit;")
    assert m.kinds == ("transaction-control", "statement", "transaction-control")
    with pytest.raises(MigrationFileError, match="ROLLBACK"):
        parse_migration("1", "x", "create table t();\nrollback;")


def test_timeout_directives():
    m = parse_migration("1", "x", "-- supagate: lock_timeout=30s statement_timeout=2h\nselect 1;")
    assert (m.lock_timeout, m.statement_timeout) == ("30s", "2h")
    with pytest.raises(MigrationFileError, match="unknown directive"):
        parse_migration("1", "x", "-- supagate: lock_timeout=soon\nselect 1;")


def test_unreadable_and_non_utf8_files_name_the_file(tmp_path):
    (tmp_path / "20240101000000_a.sql").write_bytes(b"select '\xff';")
    with pytest.raises(MigrationFileError, match=r"20240101000000_a.sql: not UTF-8"):
        load_migrations(tmp_path)
