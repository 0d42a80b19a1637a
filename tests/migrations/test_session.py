"""No migration changes how the next one is read, or whose it is; history values are bound
by the server. Each attack of the red-team review, and its safe twin."""

from __future__ import annotations

import os
import subprocess
import sys

import psycopg
import pytest

from supagate.migrations import runner
from supagate.migrations.files import MigrationFileError, load_migrations
from tests.conftest import ROOT, url_with, write_migrations
from tests.migrations.test_runner import QUIET, history, tables

# Read by the gate as one SELECT of a string; with standard_conforming_strings off the
# server reads a SELECT and a DROP.
SMUGGLED = "select 'a\\'' ; drop table public.x; -- ';\n"


def _supagate(*args, url):
    return subprocess.run([sys.executable, "-m", "supagate.cli", *args], capture_output=True, text=True, cwd=ROOT,
                          env={**os.environ, "SUPABASE_DB_URL": url}, timeout=120)


@pytest.mark.parametrize("setting", [
    "set standard_conforming_strings = off;",
    "SET SESSION standard_conforming_strings TO off;",
    "set client_encoding = 'GBK';",
    "set names 'SJIS';",
    "set backslash_quote = on;",
    "set role anon;",
    "set local role authenticated;",
    "set session authorization anon;",
])
def test_a_visible_session_change_is_refused_with_file_and_line_before_anything_runs(tmp_path, db_url, setting):
    src = write_migrations(tmp_path, {"20240101000000_x.sql": "create table public.x (id int);",
                                      "20240101000100_set.sql": f"-- sneaky\ncreate table y (id int);\n{setting}",
                                      "20240101000200_next.sql": SMUGGLED})
    with pytest.raises(MigrationFileError, match=r"20240101000100_set\.sql:3: "):
        load_migrations(src)
    done = _supagate("migrate", "--migrations", str(src), url=db_url)
    assert done.returncode == 2 and "20240101000100_set.sql:3" in done.stderr
    assert tables(db_url) == set() and history(db_url) == []


@pytest.mark.parametrize("change, seen", [
    ("select set_config('standard_conforming_strings', 'off', false);", "standard_conforming_strings is off"),
    ("do $$ begin execute 'set standard_conforming_strings = off'; end $$;", "standard_conforming_strings is off"),
    ("select set_config('standard_conforming_strings', 'off', true);", "standard_conforming_strings is off"),
    ("do $$ begin execute format('%s %s', 'set role', 'anon'); end $$;", "the role is anon"),
    ("select set_config('client_encoding', 'LATIN1', false);", "client_encoding is LATIN1"),
    ("select set_config('backslash_quote', 'on', false);", "backslash_quote is on"),
])
def test_a_dynamic_session_change_fails_its_file_and_nothing_after_runs(tmp_path, db_url, change, seen):
    """The guard runs inside the file's transaction: the file rolls back, the next file is
    never read by a server with other settings (the smuggled DROP never runs)."""
    src = write_migrations(tmp_path, {"20240101000000_x.sql": "create table public.x (id int);",
                                      "20240101000100_set.sql": f"create table public.y (id int);\n{change}",
                                      "20240101000200_next.sql": SMUGGLED})
    with pytest.raises(runner.MigrationError) as caught:
        runner.migrate(db_url, load_migrations(src), **QUIET)
    message = str(caught.value)
    assert "20240101000100_set.sql" in message and seen in message and "Nothing from this file was applied" in message
    assert tables(db_url) == {"x"}
    assert [v for v, *_ in history(db_url)] == ["20240101000000"]


def test_a_function_the_migration_calls_cannot_change_the_role_for_the_next_file(tmp_path, db_url):
    src = write_migrations(tmp_path, {
        "20240101000000_f.sql": "create function public.become(r text) returns void language plpgsql as $$ "
                                "begin perform set_config('role', r, false); end $$;",
        "20240101000100_call.sql": "select public.become('authenticated');",
        "20240101000200_t.sql": "create table public.owned_by_whom (id int);"})
    with pytest.raises(runner.MigrationError, match="the role is authenticated"):
        runner.migrate(db_url, load_migrations(src), **QUIET)
    assert "owned_by_whom" not in tables(db_url)


def test_the_server_configuration_cannot_change_how_the_engine_reads(tmp_path, db_url):
    """ALTER SYSTEM (a file outside a transaction) and a reload: the engine's startup options
    outrank the configuration file, so the next file is still read as the gate read it."""
    src = write_migrations(tmp_path, {
        "20240101000000_x.sql": "create table public.x (id int);",
        "20240101000100_system.sql": "alter system set standard_conforming_strings = off;",
        "20240101000200_reload.sql": "select pg_reload_conf();\nselect pg_sleep(0.2);",
        "20240101000300_next.sql": SMUGGLED})
    try:
        runner.migrate(db_url, load_migrations(src), **QUIET)
    finally:
        with psycopg.connect(db_url, autocommit=True) as conn:
            conn.execute("alter system reset standard_conforming_strings")
            conn.execute("select pg_reload_conf()")
    assert tables(db_url) == {"x"}


def test_index_recovery_keeps_schema_and_name_as_a_pair(tmp_path, db_url):
    """An INVALID index an interrupted run left is dropped and rebuilt; another INVALID
    index whose dotted, unquoted spelling looks the same is left alone."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute('create schema "App"; create table "App".t (id int); create index "Idx.One" on "App".t (id);'
                     'create schema app; create table app.t (id int); create index "idx.one" on app.t (id);'
                     "update pg_index set indisvalid = false where indexrelid in "
                     "('\"App\".\"Idx.One\"'::regclass, 'app.\"idx.one\"'::regclass)")
    src = write_migrations(tmp_path, {"20240101000000_i.sql": 'create index concurrently "Idx.One" on "App".t (id);'})
    messages = []
    runner.migrate(db_url, load_migrations(src), progress=messages.append)
    assert any('dropping the INVALID index "App"."Idx.One"' in m for m in messages)
    with psycopg.connect(db_url) as conn:
        rows = conn.execute("select n.nspname, c.relname, i.indisvalid from pg_index i join pg_class c on "
                            "c.oid = i.indexrelid join pg_namespace n on n.oid = c.relnamespace "
                            "where n.nspname in ('App', 'app') order by 1").fetchall()
    assert rows == [("App", "Idx.One", True), ("app", "idx.one", False)]


def test_a_db_pull_header_and_ordinary_session_settings_still_apply(tmp_path, db_url):
    header = ("SET statement_timeout = 0;\nSET lock_timeout = 0;\nSET idle_in_transaction_session_timeout = 0;\n"
              "SET client_encoding = 'UTF8';\nSET standard_conforming_strings = on;\n"
              "SELECT pg_catalog.set_config('search_path', '', false);\nSET check_function_bodies = false;\n"
              "SET xmloption = content;\nSET client_min_messages = warning;\nSET row_security = off;\n"
              "SET backslash_quote = safe_encoding;\nSET ROLE NONE;\nRESET ROLE;\n")
    src = write_migrations(tmp_path, {
        "20240101000000_remote_schema.sql": header + "CREATE TABLE public.pulled (id int);\nRESET ALL;\n",
        "20240101000100_local.sql": "set lock_timeout = '5s';\nset local statement_timeout = '1min';\n"
                                    "create table public.after (note text default E'it''s\\\\here');"})
    runner.migrate(db_url, load_migrations(src), **QUIET)
    assert tables(db_url) == {"pulled", "after"}


@pytest.mark.parametrize("encoding", ["LATIN1", "GBK", "SJIS"])
def test_text_survives_whatever_client_encoding_a_migration_tries(tmp_path, db_url, encoding):
    """History rows are bound by the server; a migration that switches the client encoding
    is refused before its text could be read in another one (naïve must not become naÃ¯ve)."""
    text = "naïve 日本語 ' \\' -- ; $$"
    src = write_migrations(tmp_path, {
        "20240101000000_t.sql": f"create table public.t (v text);\ninsert into public.t values ($q${text}$q$);\n"
                                f"-- {text}\n",
        "20240101000100_enc.sql": f"select set_config('client_encoding', '{encoding}', true);\n"
                                  f"insert into public.t values ($q${text}$q$);"})
    with pytest.raises(runner.MigrationError, match=f"client_encoding is {encoding}"):
        runner.migrate(db_url, load_migrations(src), **QUIET)
    with psycopg.connect(db_url) as conn:
        assert conn.execute("select v from public.t").fetchall() == [(text,)]
    (version, name, statements), = history(db_url)
    assert statements == [s.text for s in load_migrations(src)[0].statements]
    assert text in statements[1] and text in statements[2]


def test_a_crafted_comment_is_stored_as_written(tmp_path, db_url):
    """The history literal once built on the client: a comment shaped to break out of it
    ran as SQL when the row was written. Now it is a parameter."""
    crafted = "-- \x5c'); drop table public.keep; select ('\nselect 1;"
    src = write_migrations(tmp_path, {"20240101000000_keep.sql": "create table public.keep (id int);",
                                      "20240101000100_c.sql": crafted})
    runner.migrate(db_url, load_migrations(src), **QUIET)
    assert "keep" in tables(db_url)
    assert history(db_url)[1][2] == [s.text for s in load_migrations(src)[1].statements]


def test_settings_the_url_or_the_role_set_cannot_change_how_the_engine_reads(cluster, tmp_path):
    """ALTER ROLE/DATABASE ... SET and the URL's options lose to the engine's startup options."""
    url = cluster.create_database("session_defaults")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("alter database session_defaults set standard_conforming_strings = off")
    src = write_migrations(tmp_path, {"20240101000000_x.sql": "create table public.x (id int);",
                                      "20240101000100_s.sql": SMUGGLED})
    runner.migrate(url_with(url, options="-c standard_conforming_strings=off"), load_migrations(src), **QUIET)
    assert tables(url) == {"x"}  # one SELECT of a string, as the gate read it


def test_a_non_utf8_file_name_is_refused_when_files_load(tmp_path, db_url):
    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "20240101000000_ok.sql").write_text("create table public.ok (id int);")
    bad = os.fsencode(str(folder)) + b"/20240101000100_caf\xe9.sql"
    with open(bad, "wb") as handle:
        handle.write(b"create index concurrently ok_id on public.ok (id);")
    with pytest.raises(MigrationFileError, match="not UTF-8"):
        load_migrations(folder)
    done = _supagate("migrate", "--migrations", str(folder), url=db_url)
    assert done.returncode == 2 and "Rename the file" in done.stderr
    assert tables(db_url) == set()


HISTORY_TRIGGER = """create function public.history_note() returns trigger language plpgsql as $$
begin perform set_config('standard_conforming_strings', 'off', false); return new; end $$;
create trigger history_note after insert on supabase_migrations.schema_migrations
  for each row execute function public.history_note();"""


def test_a_trigger_on_the_history_table_cannot_change_the_session_after_the_guard(tmp_path, db_url):
    """The red team's chain: a trigger the history insert fires switched string lexing off
    after the guard, so the next file's DROP ran as a SELECT's string. The guard now runs
    after the history rows, and nothing may sit on the history tables."""
    src = write_migrations(tmp_path, {"20240101000000_x.sql": "create table public.x (id int);",
                                      "20240101000100_trigger.sql": HISTORY_TRIGGER,
                                      "20240101000200_next.sql": SMUGGLED})
    with pytest.raises(runner.MigrationError, match="20240101000100_trigger.sql"):
        runner.migrate(db_url, load_migrations(src), **QUIET)
    assert tables(db_url) == {"x"} and [v for v, *_ in history(db_url)] == ["20240101000000"]


def test_a_migration_cannot_rewrite_the_history_of_a_later_file(tmp_path, db_url):
    src = write_migrations(tmp_path, {
        "20240101000000_forge.sql": "update pg_temp.supagate_pending set statements = array['select 1'] "
                                    "where version = '20240101000100';",
        "20240101000100_real.sql": "create table public.real_change (id int);"})
    with pytest.raises(runner.MigrationError, match="20240101000100_real.sql.*staged for this file were changed"):
        runner.migrate(db_url, load_migrations(src), **QUIET)
    assert "real_change" not in tables(db_url)


def test_a_non_ascii_character_before_a_dollar_sign_splits_as_the_server_does(tmp_path, db_url):
    """`€$x$` is an identifier to PostgreSQL, not the start of a dollar quote: the SET
    between two of them is a statement of its own, refused when the file loads."""
    src = write_migrations(tmp_path, {
        "20240101000000_x.sql": "select 1 as €$x$;set standard_conforming_strings = off;select 2 as €$x$;"})
    with pytest.raises(MigrationFileError, match="_x.sql:1: `SET standard_conforming_strings = off`"):
        load_migrations(src)


def test_a_trigger_deferred_to_commit_cannot_change_how_the_next_file_is_read(tmp_path, db_url):
    """A deferred constraint trigger runs at COMMIT, after the file's last guard: the next
    file's query starts with the guard, and an error there ends the query before any of it."""
    deferred = ("create table public.tick (id int primary key);\n"
                "create function public.tick_fn() returns trigger language plpgsql as $$ begin "
                "perform set_config('standard_conforming_strings', 'off', false); return null; end $$;\n"
                "create constraint trigger tick_c after insert on public.tick deferrable initially deferred "
                "for each row execute function public.tick_fn();\n"
                "insert into public.tick values (1);")
    src = write_migrations(tmp_path, {"20240101000000_x.sql": "create table public.x (id int);",
                                      "20240101000100_tick.sql": deferred,
                                      "20240101000200_next.sql": "select 'a\\', $$';commit;drop table public.x;"
                                                                 "commit;--$$ as x\n;"})
    with pytest.raises(runner.MigrationError, match="20240101000200_next.sql.*standard_conforming_strings is off"):
        runner.migrate(db_url, load_migrations(src), **QUIET)
    assert "x" in tables(db_url)


def test_a_migration_may_not_set_what_the_statement_log_records(tmp_path):
    src = write_migrations(tmp_path, {"20240101000000_quiet.sql": "set local pg_stat_statements.track = 'none';"})
    with pytest.raises(MigrationFileError, match="statement log"):
        load_migrations(src)
