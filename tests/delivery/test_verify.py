"""`supagate verify` against the example app in the embedded database."""

from __future__ import annotations

import json

import psycopg
import pytest

from supagate.migrations import runner
from supagate.migrations.files import load_migrations
from tests.cli.test_cli import supagate
from tests.conftest import APP, APP_MIGRATIONS
from tests.loopback import LoopbackServer, QuietHandler


@pytest.fixture(scope="module")
def app_url():
    from supagate.postgres.embedded import EmbeddedPostgres

    with EmbeddedPostgres() as pg:
        runner.migrate(pg.url, load_migrations(APP_MIGRATIONS), progress=lambda _: None)
        _schedule_stack_jobs(pg.url)
        yield pg.url


def _schedule_stack_jobs(url: str) -> None:
    """What `pulumi up`'s CronJob resources do for the prod stack."""
    from supagate.config.loading import settings_from_stack_file
    from supagate.ops import cron

    settings = settings_from_stack_file("prod", APP / "Pulumi.prod.yaml")
    with psycopg.connect(url, autocommit=True) as conn:
        for name, job in cron.stack_jobs(settings, settings.alert_rules()).items():
            cron.ensure(conn, name, job["schedule"], job["command"], job["active"])


def health_server(status: int, body: dict) -> LoopbackServer:
    class Handler(QuietHandler):
        def do_GET(self):
            self.send_json(status, body)

    return LoopbackServer(Handler, "/functions/v1/health-check")


def test_example_app_verifies_with_a_healthy_health_check(app_url):
    server = health_server(200, {"status": "healthy", "problems": []})
    try:
        run = supagate("verify", "--health-url", server.url, "--format", "json", env={"SUPABASE_DB_URL": app_url})
    finally:
        server.close()
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout)
    assert report["ok"] is True
    assert [c["check"] for c in report["checks"]] == ["migrations-applied", "tables-present", "rls-enabled",
                                                       "policies-present", "matviews-hidden", "cron-jobs",
                                                       "seeds-absent", "health-check"]
    assert "7/7 scheduled jobs active" in run.stderr and "VERIFIED" in run.stderr


def test_a_job_changed_by_hand_fails_verification(app_url):
    """Names are not enough: a schedule edited or a job paused outside the stack is found."""
    with psycopg.connect(app_url, autocommit=True) as conn:
        jobid = conn.execute("select jobid from cron.job where jobname = 'vacuum-engagement-events'").fetchone()[0]
        conn.execute("select cron.alter_job(%s, schedule := '0 12 * * *')", (jobid,))
    try:
        run = supagate("verify", "--stack", "prod", "--format", "json", "--no-health",
                       env={"SUPABASE_DB_URL": app_url})
    finally:
        with psycopg.connect(app_url, autocommit=True) as conn:
            conn.execute("select cron.alter_job(%s, schedule := '30 3 * * 0')", (jobid,))
    assert run.returncode == 1
    (failed,) = [c for c in json.loads(run.stdout)["checks"] if not c["ok"]]
    assert failed["check"] == "cron-jobs"
    assert "vacuum-engagement-events: schedule is '0 12 * * *', the stack says '30 3 * * 0'" in failed["detail"]


def test_rls_switched_off_fails_naming_the_check_and_the_table(app_url):
    with psycopg.connect(app_url, autocommit=True) as conn:
        conn.execute("ALTER TABLE public.assessments DISABLE ROW LEVEL SECURITY")
    try:
        run = supagate("verify", "--stack", "prod", "--format", "json", "--no-health",
                       env={"SUPABASE_DB_URL": app_url})
    finally:
        with psycopg.connect(app_url, autocommit=True) as conn:
            conn.execute("ALTER TABLE public.assessments ENABLE ROW LEVEL SECURITY")
    assert run.returncode == 1
    failed = [c for c in json.loads(run.stdout)["checks"] if not c["ok"]]
    assert [c["check"] for c in failed] == ["rls-enabled"]
    assert "off on: public.assessments" in failed[0]["detail"]
    assert "FAIL rls-enabled" in run.stderr and "ALTER TABLE public.assessments ENABLE ROW LEVEL SECURITY" in run.stderr


def test_unhealthy_function_dropped_policy_and_exposed_matview_fail(app_url):
    server = health_server(503, {"status": "degraded", "problems": ["40 overdue jobs"]})
    from supagate.delivery.verify import verify

    with psycopg.connect(app_url, autocommit=True) as conn:
        policy = conn.execute("SELECT pg_get_expr(polqual, polrelid) FROM pg_policy "
                              "WHERE polname = 'owner reads own scores'").fetchone()[0]
        conn.execute('DROP POLICY "owner reads own scores" ON public.daily_engagement_scores')
        conn.execute("GRANT SELECT ON analytics.latest_unified_metrics TO authenticated")
        try:
            # The gates' scope: a materialized view is reachable once its schema is exposed.
            result = verify(app_url, load_migrations(APP_MIGRATIONS), ("public", "graphql_public", "analytics"),
                            server.url)
            hidden = verify(app_url, load_migrations(APP_MIGRATIONS), ("public", "graphql_public"), None)
        finally:
            conn.execute("REVOKE SELECT ON analytics.latest_unified_metrics FROM authenticated")
            conn.execute(f'CREATE POLICY "owner reads own scores" ON public.daily_engagement_scores '
                         f"FOR SELECT TO authenticated USING ({policy})")
            server.close()
    failed = {c["check"]: c["detail"] for c in result.to_json()["checks"] if not c["ok"]}
    assert set(failed) == {"policies-present", "matviews-hidden", "health-check"}
    assert "40 overdue jobs" in failed["health-check"]
    assert hidden.passed("matviews-hidden")  # the API cannot reach a schema it does not expose


def test_a_health_answer_without_a_status_is_not_healthy(app_url):
    from supagate.delivery.verify import _health, Verification

    server = health_server(200, {"note": "an HTML error page behind a proxy would look like this"})
    try:
        result = Verification()
        _health(result, server.url, 5.0)
    finally:
        server.close()
    assert not result.ok and "no status in its answer" in result.summaries["health-check"]


def test_seed_data_on_production_fails_verification(app_url):
    """`supabase db push --include-seed` against prod leaves its bookkeeping: verify finds it."""
    with psycopg.connect(app_url, autocommit=True) as conn:
        conn.execute("create table if not exists supabase_migrations.seed_files (path text primary key, hash text not null)")
        conn.execute("insert into supabase_migrations.seed_files values ('supabase/seed.sql', 'abc')")
    try:
        run = supagate("verify", "--stack", "prod", "--format", "json", "--no-health", env={"SUPABASE_DB_URL": app_url})
        staging = supagate("verify", "--stack", "staging", "--format", "json", "--no-health",
                           env={"SUPABASE_DB_URL": app_url})
    finally:
        with psycopg.connect(app_url, autocommit=True) as conn:
            conn.execute("delete from supabase_migrations.seed_files")
    assert run.returncode == 1
    (failed,) = [c for c in json.loads(run.stdout)["checks"] if not c["ok"]]
    assert failed["check"] == "seeds-absent" and "supabase/seed.sql" in failed["detail"]
    assert "seeds-absent" not in [c["check"] for c in json.loads(staging.stdout)["checks"]]  # staging may seed
