"""The migration engine against a real PostgreSQL 15."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import psycopg
import pytest

from supagate.migrations import runner
from supagate.migrations.files import load_migrations, parse_migration
from tests.conftest import APP_MIGRATIONS, write_migrations

QUIET = dict(progress=lambda _: None)


def history(url):
    with psycopg.connect(url) as conn:
        if conn.execute("select to_regclass('supabase_migrations.schema_migrations')").fetchone()[0] is None:
            return []
        return conn.execute("select version, name, statements from supabase_migrations.schema_migrations "
                            "order by version").fetchall()


def bookkeeping(url):
    with psycopg.connect(url) as conn:
        return conn.execute("select version, checksum, down_sql, applied_by from "
                            "supabase_migrations.supagate_migrations order by version").fetchall()


def tables(url, schema="public"):
    with psycopg.connect(url) as conn:
        return {r[0] for r in conn.execute(
            "select tablename from pg_tables where schemaname = %s", (schema,)).fetchall()}


def test_app_applies_and_history_matches_files(app_db_url):
    db_url = app_db_url
    migrations = load_migrations(APP_MIGRATIONS)
    result = runner.migrate(db_url, migrations, **QUIET)
    assert result.applied == [m.version for m in migrations]
    rows = history(db_url)
    assert [(v, n, list(s)) for v, n, s in rows] == [(m.version, m.name, m.statement_texts) for m in migrations]
    kept = bookkeeping(db_url)
    assert [(v, c) for v, c, _, _ in kept] == [(m.version, m.checksum) for m in migrations]
    assert all(d for _, _, d, _ in kept) and all("via supagate" in a for *_, a in kept)
    # a second run applies nothing
    assert runner.migrate(db_url, migrations, **QUIET).applied == []


def test_failing_statement_rolls_back_the_whole_file_and_names_file_statement_line(db_url, tmp_path):
    write_migrations(tmp_path, {
        "20240101000000_ok.sql": "create table first_ok (id int);",
        "20240102000000_bad.sql": "create table half (id int);\ninsert into half values (1);\n\nselect * from\n  missing_table;",
        "20240103000000_after.sql": "create table never (id int);",
    })
    with pytest.raises(runner.MigrationError) as err:
        runner.migrate(db_url, load_migrations(tmp_path), **QUIET)
    message = str(err.value)
    assert "20240102000000_bad.sql: statement 3 at line 5" in message
    assert 'relation "missing_table" does not exist' in message and "^" in message
    assert "Nothing from this file was applied" in message
    assert tables(db_url) == {"first_ok"}  # earlier file stays, failing file fully rolled back
    assert [r[0] for r in history(db_url)] == ["20240101000000"]


def test_four_concurrent_runs_apply_each_migration_once(db_url, tmp_path):
    files = {f"2024010100{i:04d}_m{i}.sql": f"create table t{i} (id int);\nselect pg_sleep(0.02);"
             for i in range(15)}
    migrations = load_migrations(write_migrations(tmp_path, files))
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: runner.migrate(db_url, migrations, **QUIET), range(4)))
    applied = sorted(v for r in results for v in r.applied)
    assert applied == sorted(m.version for m in migrations)  # each exactly once across all runs
    assert len(history(db_url)) == 15


def test_second_run_gives_up_after_lock_wait_naming_the_holder(db_url, tmp_path):
    migrations = load_migrations(write_migrations(tmp_path, {"1_a.sql": "select 1;"}))
    with psycopg.connect(db_url, autocommit=True, application_name="other-deploy") as holder:
        holder.execute("select pg_advisory_lock(%s)", (runner.LOCK_KEY,))
        started = time.monotonic()
        with pytest.raises(runner.MigrationError, match=r"another migration run \(backend pid \d+, other-deploy\)"):
            runner.migrate(db_url, migrations, runner.Options(lock_wait=0.5), **QUIET)
        assert time.monotonic() - started < 5
    assert history(db_url) == []


def test_edited_applied_migration_stops_the_run_with_the_fix(db_url, tmp_path):
    write_migrations(tmp_path, {"20240101000000_a.sql": "create table a (id int);"})
    runner.migrate(db_url, load_migrations(tmp_path), **QUIET)
    write_migrations(tmp_path, {"20240101000000_a.sql": "create table a (id bigint);",
                                "20240102000000_b.sql": "create table b (id int);"})
    with pytest.raises(runner.MigrationError) as err:
        runner.migrate(db_url, load_migrations(tmp_path), **QUIET)
    assert "20240101000000_a.sql changed after it was applied" in str(err.value)
    assert "supagate migrate --repair 20240101000000" in str(err.value)
    assert "b" not in tables(db_url)
    # after review, repair accepts the file; the next run goes on
    runner.repair(db_url, load_migrations(tmp_path), "20240101000000", **QUIET)
    assert runner.migrate(db_url, load_migrations(tmp_path), **QUIET).applied == ["20240102000000"]
    assert history(db_url)[0][2] == ["create table a (id bigint)"]


def test_new_file_older_than_newest_applied_needs_include_all(db_url, tmp_path):
    write_migrations(tmp_path, {"20240102000000_b.sql": "create table b (id int);"})
    runner.migrate(db_url, load_migrations(tmp_path), **QUIET)
    write_migrations(tmp_path, {"20240101000000_a.sql": "create table a (id int);"})
    with pytest.raises(runner.MigrationError, match=r"older than the newest applied.*\n.*--include-all"):
        runner.migrate(db_url, load_migrations(tmp_path), **QUIET)
    assert "a" not in tables(db_url)
    result = runner.migrate(db_url, load_migrations(tmp_path), runner.Options(include_all=True), **QUIET)
    assert result.applied == ["20240101000000"]


def test_applied_version_missing_locally_stops_the_run(db_url, tmp_path):
    write_migrations(tmp_path / "one", {"20240101000000_a.sql": "create table a (id int);"})
    runner.migrate(db_url, load_migrations(tmp_path / "one"), **QUIET)
    write_migrations(tmp_path / "two", {"20240102000000_b.sql": "create table b (id int);"})
    with pytest.raises(runner.MigrationError, match="not in the migrations directory: 20240101000000"):
        runner.migrate(db_url, load_migrations(tmp_path / "two"), **QUIET)


def test_concurrent_index_file_runs_outside_a_transaction_history_after_success(db_url, tmp_path):
    write_migrations(tmp_path, {
        "20240101000000_t.sql": "create table t (id int, v text);",
        "20240102000000_idx.sql": "set lock_timeout = '2s';\ncreate index concurrently t_v_idx on t (v);",
    })
    runner.migrate(db_url, load_migrations(tmp_path), **QUIET)
    with psycopg.connect(db_url) as conn:
        assert conn.execute("select indisvalid from pg_index where indexrelid = 't_v_idx'::regclass").fetchone() == (True,)
    assert [r[0] for r in history(db_url)] == ["20240101000000", "20240102000000"]


def test_failed_concurrent_index_writes_no_history_and_reports_invalid_index(db_url, tmp_path):
    write_migrations(tmp_path, {
        "20240101000000_t.sql": "create table t (id int);\ninsert into t values (1), (1);",
        "20240102000000_idx.sql": "create unique index concurrently t_id_key on t (id);",
    })
    with pytest.raises(runner.MigrationError) as err:
        runner.migrate(db_url, load_migrations(tmp_path), **QUIET)
    assert "its history row was not written" in str(err.value)
    assert "Invalid indexes left behind: t_id_key" in str(err.value)
    assert [r[0] for r in history(db_url)] == ["20240101000000"]


def test_lock_timeout_stops_a_migration_stuck_behind_a_long_transaction(db_url, tmp_path):
    write_migrations(tmp_path, {"20240101000000_t.sql": "create table busy (id int);"})
    runner.migrate(db_url, load_migrations(tmp_path), **QUIET)
    write_migrations(tmp_path, {"20240102000000_alter.sql": "alter table busy add column note text;"})
    with psycopg.connect(db_url) as blocker:
        blocker.execute("select * from busy")  # holds ACCESS SHARE until the transaction ends
        started = time.monotonic()
        with pytest.raises(runner.MigrationError, match="lock_timeout"):
            runner.migrate(db_url, load_migrations(tmp_path), runner.Options(lock_timeout="300ms"), **QUIET)
        assert time.monotonic() - started < 5
    assert [r[0] for r in history(db_url)] == ["20240101000000"]


def test_per_file_timeout_directive_overrides_the_default(db_url):
    slow = parse_migration("20240101000000", "slow", "-- supagate: statement_timeout=200ms\nselect pg_sleep(2);")
    with pytest.raises(runner.MigrationError, match="statement_timeout"):
        runner.migrate(db_url, [slow], **QUIET)


def test_down_to_runs_stored_down_scripts_newest_first(app_db_url):
    db_url = app_db_url
    migrations = load_migrations(APP_MIGRATIONS)
    runner.migrate(db_url, migrations, **QUIET)
    target = migrations[1].version
    result = runner.down_to(db_url, target, **QUIET)
    assert result.reverted == [m.version for m in reversed(migrations[2:])]
    assert [r[0] for r in history(db_url)] == [m.version for m in migrations[:2]]
    assert [r[0] for r in bookkeeping(db_url)] == [m.version for m in migrations[:2]]
    with psycopg.connect(db_url) as conn:
        assert conn.execute("select to_regclass('private.audit_log')").fetchone() == (None,)
    # and forward again
    assert runner.migrate(db_url, migrations, **QUIET).applied == [m.version for m in migrations[2:]]


def test_down_to_refuses_before_anything_when_a_down_script_is_missing(db_url, tmp_path):
    write_migrations(tmp_path, {"20240101000000_a.sql": "create table a (id int);",
                                "down/20240101000000_a.down.sql": "drop table a;",
                                "20240102000000_b.sql": "create table b (id int);"})
    runner.migrate(db_url, load_migrations(tmp_path), **QUIET)
    with pytest.raises(runner.MigrationError, match="no down script stored for 20240102000000"):
        runner.down_to(db_url, "0", **QUIET)
    assert tables(db_url) == {"a", "b"} and len(history(db_url)) == 2


def test_dry_run_changes_nothing(db_url):
    result = runner.migrate(db_url, load_migrations(APP_MIGRATIONS), dry_run=True, **QUIET)
    assert result.dry_run and len(result.pending) >= 7
    assert tables(db_url) == set()
    with psycopg.connect(db_url) as conn:
        assert conn.execute("select to_regclass('supabase_migrations.schema_migrations')").fetchone() == (None,)


def test_failing_history_insert_is_reported_as_such_and_rolls_back_the_file(db_url, tmp_path):
    write_migrations(tmp_path, {"20240101000000_a.sql": "create table a (id int);"})
    runner.migrate(db_url, load_migrations(tmp_path), **QUIET)  # creates the history tables
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("alter table supabase_migrations.schema_migrations add constraint history_read_only_today "
                     "check (version < '20240102000000')")
    write_migrations(tmp_path, {"20240102000000_b.sql": "create table b (id int);"})
    with pytest.raises(runner.MigrationError) as err:
        runner.migrate(db_url, load_migrations(tmp_path), **QUIET)
    assert "failed to record 20240102000000_b.sql" in str(err.value)
    assert "history_read_only_today" in str(err.value) and "run again" in str(err.value)
    assert "b" not in tables(db_url)


def test_a_trigger_left_on_the_history_table_stops_the_run_before_anything_is_sent(db_url, tmp_path):
    write_migrations(tmp_path, {"20240101000000_a.sql": "create table a (id int);"})
    runner.migrate(db_url, load_migrations(tmp_path), **QUIET)
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("create function public.note() returns trigger language plpgsql as $$ begin return new; end $$")
        conn.execute("create trigger note before insert on supabase_migrations.schema_migrations "
                     "for each row execute function public.note()")
    write_migrations(tmp_path, {"20240102000000_b.sql": "create table b (id int);"})
    with pytest.raises(runner.MigrationError, match="(?s)failed to start.*a trigger or rule sits on supabase_migrations"):
        runner.migrate(db_url, load_migrations(tmp_path), **QUIET)
    assert "b" not in tables(db_url)


def test_percent_signs_and_placeholders_in_a_file_reach_the_database_verbatim(db_url, tmp_path):
    """The file's SQL is sent as written: `%`, `%s`, `%%` and `%(x)s` are the app's (LIKE
    patterns, format(), RAISE), never parameters; history stores them unchanged too."""
    sql = ("create table pct (v text);\n"
           "insert into pct values ('100%'), (format('%s|%%|%I', 'a', 'b')), ('%(name)s');\n"
           "create function pct_note() returns void language plpgsql as $$\n"
           "begin raise notice 'rows: %', (select count(*) from pct where v like '%|%'); end $$;\n")
    src = write_migrations(tmp_path, {"20240101000000_pct.sql": sql, "20240101000100_pct_down.sql": "select 1;"})
    (down := src / "down").mkdir()
    (down / "20240101000100_pct_down.down.sql").write_text("select '%s %% %(x)s';\n")
    runner.migrate(db_url, load_migrations(src), **QUIET)
    with psycopg.connect(db_url) as conn:
        assert conn.execute("select v from pct order by v").fetchall() == [("%(name)s",), ("100%",), ('a|%|b',)]
        conn.execute("select pct_note()")
    assert history(db_url)[0][2] == [s.text for s in load_migrations(src)[0].statements]
    assert bookkeeping(db_url)[1][2] == "select '%s %% %(x)s';\n"


def test_one_round_trip_per_file_and_six_for_a_concurrent_build(db_url, tmp_path, monkeypatch):
    """Round trips are what a deploy to a hosted database waits on (tens of ms each): a file
    in a transaction is one query; a CREATE INDEX CONCURRENTLY file is the timeouts, the
    check before, the session guard, the build, the check after, and the history with the reset."""
    src = write_migrations(tmp_path, {"20240101000000_t.sql": "create table rt (id int);\ninsert into rt values (1);",
                                      "20240101000100_i.sql": "create index concurrently rt_idx on public.rt (id);"})
    sent: list[str] = []
    real_execute, real_run_file = psycopg.Connection.execute, runner._run_file
    per_file = {}

    def counting(self, query, *args, **kwargs):
        sent.append(str(query))
        return real_execute(self, query, *args, **kwargs)

    def run_file(conn, migration, *args, **kwargs):
        before = len(sent)
        real_run_file(conn, migration, *args, **kwargs)
        per_file[migration.migration.name] = len(sent) - before

    monkeypatch.setattr(psycopg.Connection, "execute", counting)
    monkeypatch.setattr(runner, "_run_file", run_file)
    runner.migrate(db_url, load_migrations(src), **QUIET)
    assert per_file == {"t": 1, "i": 6}
    assert [v for v, *_ in history(db_url)] == ["20240101000000", "20240101000100"]
    with psycopg.connect(db_url) as conn:
        assert conn.execute("select indisvalid from pg_index where indexrelid = 'public.rt_idx'::regclass"
                            ).fetchone() == (True,)
