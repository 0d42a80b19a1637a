"""The app's pgTAP suite on the embedded database, and proof that it catches a leak."""

from __future__ import annotations

import psycopg

from supagate.migrations import runner
from supagate.migrations.files import load_migrations
from supagate.postgres.pgtap import parse_tap, run_suite
from tests.conftest import APP, APP_MIGRATIONS

TESTS = APP / "supabase" / "tests"


def test_isolation_suite_passes_on_the_app(app_db_url):
    runner.migrate(app_db_url, load_migrations(APP_MIGRATIONS), progress=lambda _: None)
    results = run_suite(app_db_url, TESTS)
    assert len(results) >= 4
    failures = {r.path: (r.failed, r.error, r.planned) for r in results if not r.ok}
    assert not failures
    isolation = next(r for r in results if r.path.endswith("02_user_isolation.test.sql"))
    # every exposed owner table is probed for read, update, delete and take-over
    assert sum("cannot read B's rows" in label for label in isolation.passed) >= 6


def test_isolation_suite_fails_when_a_policy_leaks(app_db_url):
    runner.migrate(app_db_url, load_migrations(APP_MIGRATIONS), progress=lambda _: None)
    with psycopg.connect(app_db_url, autocommit=True) as conn:
        conn.execute("create policy leak on public.assessments for select to authenticated using (true)")
        conn.execute("alter table public.feature_flags disable row level security")
    results = {r.path.rsplit("/", 1)[-1]: r for r in run_suite(app_db_url, TESTS)}
    isolation = results["02_user_isolation.test.sql"]
    assert not isolation.ok
    assert any("A cannot read B's rows in assessments" in f for f in isolation.failed)
    assert any("RLS is enabled on feature_flags" in f for f in results["01_rls_enabled.test.sql"].failed)


def test_tap_parser_counts_plan_and_failures():
    result = parse_tap("1..3\nok 1 - a\nnot ok 2 - b\n# Failed test 2\nok 3\n", "x.sql")
    assert result.planned == 3 and result.passed == ["1 - a", "3"] and result.failed == ["2 - b"]
    assert not result.ok
