"""`supagate test` and `supagate db start|stop|status` on an app of the user's (not the
example): migrations, a seed from config.toml, a setup file, pgTAP files that pass and fail."""

from __future__ import annotations

import json

from tests.cli.test_cli import supagate
from tests.conftest import write_migrations


def _app(root):
    supabase = root / "supabase"
    write_migrations(supabase / "migrations", {"20250101000000_notes.sql":
        "create table public.notes (id bigint primary key, user_id uuid references auth.users, body text);\n"
        "alter table public.notes enable row level security;\n"
        "create policy \"own\" on public.notes for select to authenticated using ((select auth.uid()) = user_id);\n"})
    (supabase / "config.toml").write_text('project_id = "app"\n[db.seed]\nenabled = true\nsql_paths = ["./seeds/*.sql"]\n')
    write_migrations(supabase / "seeds", {"01_notes.sql": "insert into public.notes (id, body) values (1, 'a'), (2, 'b');\n"})
    (supabase / "tests").mkdir()
    (supabase / "tests" / "setup.sql").write_text("create table public.test_setup_ran (ok boolean);\n")
    (supabase / "tests" / "database").mkdir()
    (supabase / "tests" / "database" / "notes.test.sql").write_text(
        "begin;\ncreate extension if not exists pgtap with schema extensions;\nselect plan(3);\n"
        "select is((select count(*) from public.notes)::int, 2, 'the seed loaded');\n"
        "select has_table('public', 'test_setup_ran', 'the setup file ran');\n"
        "select is(1, 2, 'a failing assertion names itself');\n"
        "select * from finish();\nrollback;\n")
    return root


def test_the_apps_tests_report_each_file_and_assertion(tmp_path):
    root = _app(tmp_path / "app")
    run = supagate("test", "--project", str(root), "--setup", str(root / "supabase" / "tests" / "setup.sql"),
                   "--format", "json")
    assert run.returncode == 1, run.stderr
    report = json.loads(run.stdout)
    assert report["passed"] is False and report["migrations_applied"] == 1
    assert report["seeded"] and report["seeded"][0].endswith("seeds/01_notes.sql")
    (file,) = [f for f in report["files"] if f["path"].endswith("notes.test.sql")]
    assert file["passed"] == 2 and file["failed"] == ["3 - a failing assertion names itself"]
    assert "not ok 3 - a failing assertion names itself" in run.stderr


def test_no_test_file_is_a_failure_not_a_pass(tmp_path):
    root = _app(tmp_path / "app")
    for path in (root / "supabase" / "tests").rglob("*.sql"):
        path.unlink()
    run = supagate("test", "--project", str(root))
    assert run.returncode == 1 and "nothing was tested" in run.stdout


def test_a_broken_seed_stops_before_the_tests_naming_the_file(tmp_path):
    root = _app(tmp_path / "app")
    (root / "supabase" / "seeds" / "01_notes.sql").write_text("insert into public.nope values (1);\n")
    run = supagate("test", "--project", str(root))
    assert run.returncode == 1 and "failed to load" in run.stderr and "01_notes.sql" in run.stderr


def test_a_local_database_stays_up_and_is_found_again(tmp_path):
    root = _app(tmp_path / "app")
    started = supagate("db", "start", "--project", str(root))
    try:
        assert started.returncode == 0, started.stderr
        assert "export SUPABASE_DB_URL='postgresql://" in started.stdout
        status = supagate("db", "status", "--project", str(root), "--format", "json")
        assert status.returncode == 0 and json.loads(status.stdout)["url"] in started.stdout
        tested = supagate("test", "--project", str(root), "--setup", str(root / "supabase" / "tests" / "setup.sql"))
        assert "Using the local database from `supagate db start`" in tested.stderr
    finally:
        assert supagate("db", "stop", "--project", str(root)).returncode == 0
    assert supagate("db", "status", "--project", str(root)).returncode == 1
