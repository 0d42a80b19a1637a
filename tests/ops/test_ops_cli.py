"""`supagate alerts` and `supagate ops` as a user and the health workflow run them: the
JSON contract of `alerts evaluate`, exit 1 on a rule that cannot be evaluated, `render`,
`ops init` writing the migration once, and `ops watch` sending a signed webhook with the
URL taken from the environment, never printed."""

from __future__ import annotations

import json
from pathlib import Path

import psycopg
import yaml

from supagate.cli.common import stack_settings
from tests.cli.test_cli import supagate
from tests.conftest import ROOT
from tests.ops.test_notifications import HMAC_KEY, PATH_TOKEN, Receiver

T = "2033-05-01T10:00:00Z"


def _stack_file(tmp_path: Path, rules: dict) -> Path:
    document = {"config": {
        "supabase-platform:tier": "staging", "supabase-platform:projectRef": "a" * 20,
        "supabase-platform:alerts": {
            "channels": {"hook": {"type": "webhook", "secret": "CLI_HOOK_URL", "signWith": "CLI_HOOK_KEY"},
                         "issues": {"type": "githubIssue", "labels": ["alert", "staging"]}},
            "defaults": {"notify": ["hook", "issues"]}, "rules": rules},
        "supabase-platform:alertSecrets": {"CLI_HOOK_URL": {"secure": "v1:abc"}, "CLI_HOOK_KEY": {"secure": "v1:def"}},
    }}
    path = tmp_path / "Pulumi.cli.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


def test_evaluate_prints_every_rules_state_as_json(ops_url, tmp_path):
    with psycopg.connect(ops_url, autocommit=True) as conn:
        conn.execute("create schema if not exists cli; create table if not exists cli.orders (n int)")
        # what a migration does for a rule to read a table (the rule runs as this role)
        conn.execute("grant usage on schema cli to supagate_alert_reader; "
                     "grant select on cli.orders to supagate_alert_reader")
        conn.execute("insert into cli.orders values (1), (2), (3)")
    stack = _stack_file(tmp_path, {
        "cli-orders": {"kind": "sql", "query": "select count(*) from cli.orders", "above": 2, "for": "2m"},
        "cli-quiet": {"kind": "sql", "query": "select count(*) from cli.orders", "above": 100}})
    args = ["alerts", "evaluate", "--stack", "cli", "--stack-file", str(stack), "--format", "json"]
    first = supagate(*args, "--at", T, env={"SUPABASE_DB_URL": ops_url})
    assert first.returncode == 0, first.stderr
    states = {a["rule"]: a for a in json.loads(first.stdout)["alerts"]}
    assert states["cli-orders"] == {"rule": "cli-orders", "state": "pending", "value": 3.0,
                                    "since": "2033-05-01T10:00:00+00:00"}
    assert states["cli-quiet"]["state"] == "inactive"
    later = supagate(*args, "--at", "2033-05-01T10:02:00Z", env={"SUPABASE_DB_URL": ops_url})
    states = {a["rule"]: a for a in json.loads(later.stdout)["alerts"]}
    assert states["cli-orders"]["state"] == "firing" and states["cli-orders"]["since"] == "2033-05-01T10:00:00+00:00"

    bad_time = supagate(*args, "--at", "yesterday", env={"SUPABASE_DB_URL": ops_url})
    assert bad_time.returncode == 2 and "--at 'yesterday' is not an ISO 8601 time" in bad_time.stderr


def test_a_rule_that_cannot_be_evaluated_fails_the_command(ops_url, tmp_path):
    stack = _stack_file(tmp_path, {"cli-broken": {"kind": "sql", "query": "select count(*) from public.nope",
                                                  "above": 0}})
    done = supagate("alerts", "evaluate", "--stack", "cli", "--stack-file", str(stack), "--at", T,
                    env={"SUPABASE_DB_URL": ops_url})
    assert done.returncode == 1
    assert 'cli-broken  value no data  ERROR: relation "public.nope" does not exist' in done.stdout


def test_evaluate_without_the_ops_schema_says_how_to_get_it(db_url, tmp_path):
    stack = _stack_file(tmp_path, {"cli-x": {"kind": "sql", "query": "select 1", "above": 0}})
    done = supagate("alerts", "evaluate", "--stack", "cli", "--stack-file", str(stack), env={"SUPABASE_DB_URL": db_url})
    assert done.returncode == 1 and "run `supagate ops init`" in done.stderr


def test_render_writes_a_prometheus_rules_file(tmp_path):
    from tests.conftest import APP

    out = tmp_path / "rules.yml"
    done = supagate("alerts", "render", "--stack", "prod", "--stack-file", str(APP / "Pulumi.prod.yaml"),
                    "--prometheus", str(out))
    assert done.returncode == 0, done.stderr
    rules = yaml.safe_load(out.read_text())["groups"][0]["rules"]
    connections = next(r for r in rules if r["alert"] == "connections")
    assert connections["expr"] == ("100 * sum(pg_stat_database_num_backends) / max(max_connections_connection_count) "
                                   "> 80")
    assert "evaluated in the database only" in done.stderr and "overdue-jobs" in done.stderr


def test_ops_init_writes_the_migration_once(tmp_path):
    from supagate.ops.alerts import ops_sql

    migrations = tmp_path / "supabase" / "migrations"
    (migrations / "down").mkdir(parents=True)
    (tmp_path / "supabase" / "functions").mkdir()
    (migrations / "20991231235959_last.sql").write_text("select 1;\n")
    first = supagate("ops", "init", "--migrations", str(migrations), cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    (path,) = [p for p in migrations.glob("*_supagate_ops.sql")]
    assert path.name == "21000101000000_supagate_ops.sql"  # one second after the last one, a valid time
    assert path.read_text() == ops_sql() and (migrations / "down" / f"{path.stem}.down.sql").exists()
    shared = tmp_path / "supabase" / "functions" / "_shared" / "supagate_flags.ts"
    assert shared.read_text() == (ROOT / "supagate" / "ops" / "deno" / "flags.ts").read_text()
    again = supagate("ops", "init", "--migrations", str(migrations), cwd=tmp_path)
    assert again.returncode == 0 and "nothing written" in again.stdout
    assert len(list(migrations.glob("*_supagate_ops.sql"))) == 1


def test_init_and_ops_init_write_the_same_files_down_script_included_when_the_app_keeps_them(tmp_path):
    """`supagate init` (adopting an app) and `supagate ops init` share ops_migration: with a
    down/ folder the ops migration gets its rollback beside the app's, under the same stem."""
    from supagate.config.init import OPS_DOWN, ops_migration

    migrations = tmp_path / "migrations"
    migrations.mkdir()
    (migrations / "20240101000000_a.sql").write_text("select 1;\n")
    (only,) = ops_migration(migrations)
    (migrations / "down").mkdir()
    (up, down) = ops_migration(migrations)
    assert only[0].name.endswith("_supagate_ops.sql") and up[1] == only[1]
    assert down == (migrations / "down" / f"{up[0].stem}.down.sql", OPS_DOWN)
    up[0].write_text(up[1])
    assert ops_migration(migrations) == []


def _health_login(conn, ops_url: str) -> str:
    """The health workflow's login as the README sets it up: the two delivery roles, nothing else."""
    conn.execute("drop role if exists health_login")
    conn.execute("create role health_login login password 'health-pw' in role supagate_watcher, supagate_sender")
    return ops_url.replace("postgresql://postgres@", "postgresql://health_login:health-pw@", 1)


def test_ops_watch_sends_signed_webhooks_lists_issue_ones_and_acks(ops_url, tmp_path):
    from supagate.ops.alerts import sync_channels

    receiver = Receiver()
    try:
        stack = _stack_file(tmp_path, {"cli-watch": {"kind": "sql", "query": "select 1", "above": 0}})
        with psycopg.connect(ops_url, autocommit=True) as conn:
            conn.execute("delete from ops.notifications; delete from ops.heartbeat where source = 'workflow'")
            conn.execute("select set_config('ops.eval_at', now()::text, false), ops.beat('pg_cron'), "
                         "ops.beat('evaluator')")
            sync_channels(conn, {n: c.model_dump() for n, c in stack_settings("cli", stack).alerts.channels.items()},
                          set())  # as the stack's AlertChannel resources do
            health_url = _health_login(conn, ops_url)
        # As health.yml passes them: under the product's prefix, never the channel's bare name.
        env = {"SUPABASE_DB_URL": ops_url, "SUPAGATE_ALERT_CLI_HOOK_URL": receiver.url,
               "SUPAGATE_ALERT_CLI_HOOK_KEY": HMAC_KEY}
        assert supagate("alerts", "evaluate", "--stack", "cli", "--stack-file", str(stack), env=env).returncode == 0
        env["SUPABASE_DB_URL"] = health_url
        watch = supagate("ops", "watch", "--stack", "cli", "--stack-file", str(stack), "--format", "json", env=env)
        assert watch.returncode == 0, watch.stderr
        report = json.loads(watch.stdout)
        assert report["scheduler"]["ok"] and len(report["delivered"]) == 1
        (issue,) = report["issues"]
        assert issue["rule"] == "cli-watch" and issue["event"] == "firing" and issue["labels"] == ["alert", "staging"]
        assert len(receiver.requests) == 1 and receiver.requests[0]["headers"]["X-Supagate-Signature"]
        for secret in (receiver.url, PATH_TOKEN, HMAC_KEY):
            assert secret not in watch.stdout + watch.stderr

        ids = tmp_path / "acked.txt"
        ids.write_text(f"{issue['id']}\n")
        acked = supagate("ops", "ack", "--stack", "cli", "--stack-file", str(stack), "--ids-file", str(ids), env=env)
        assert acked.returncode == 0 and "acknowledged 1" in acked.stdout
        with psycopg.connect(ops_url, autocommit=True) as conn:
            left = conn.execute("select count(*) from ops.notifications where delivered_at is null").fetchone()[0]
            checked_in = conn.execute("select beat_at > now() - interval '1 minute' from ops.heartbeat "
                                      "where source = 'workflow'").fetchone()
        assert left == 0 and checked_in == (True,)
    finally:
        receiver.close()


def test_ops_watch_fails_when_pg_crons_heartbeat_is_stale(ops_url, tmp_path):
    with psycopg.connect(ops_url, autocommit=True) as conn:
        conn.execute("select set_config('ops.eval_at', (now() - interval '10 minutes')::text, false), "
                     "ops.beat('pg_cron')")
    stack = _stack_file(tmp_path, {"cli-stale": {"kind": "schedulerHeartbeat", "maxAge": "3m"}})
    done = supagate("ops", "watch", "--stack", "cli", "--stack-file", str(stack), "--format", "json",
                    env={"SUPABASE_DB_URL": ops_url, "SUPAGATE_ALERT_CLI_HOOK_URL": "http://127.0.0.1:9/x",
                         "SUPAGATE_ALERT_CLI_HOOK_KEY": "k"})
    assert done.returncode == 1 and "scheduler-stopped" in done.stderr
    assert json.loads(done.stdout)["scheduler"]["ok"] is False


def test_ops_watch_fails_when_pg_cron_beats_but_no_evaluation_completes(ops_url, tmp_path):
    """A sleeping or failing evaluation no longer hides behind a green heartbeat: the
    evaluation beats last, and the watcher reads both."""
    with psycopg.connect(ops_url, autocommit=True) as conn:
        conn.execute("select set_config('ops.eval_at', (now() - interval '10 minutes')::text, false), "
                     "ops.beat('evaluator'), set_config('ops.eval_at', now()::text, false), ops.beat('pg_cron')")
    stack = _stack_file(tmp_path, {"cli-stale": {"kind": "schedulerHeartbeat", "maxAge": "3m"}})
    env = {"SUPABASE_DB_URL": ops_url, "CLI_HOOK_URL": "http://127.0.0.1:9/x", "CLI_HOOK_KEY": "k"}
    done = supagate("ops", "watch", "--stack", "cli", "--stack-file", str(stack), "--format", "json", env=env)
    assert done.returncode == 1 and "evaluation-stale" in done.stderr and "scheduler-stopped" not in done.stderr
    scheduler = json.loads(done.stdout)["scheduler"]
    assert scheduler["ok"] is False and scheduler["heartbeat_age_seconds"] < 60
    assert scheduler["evaluation_age_seconds"] > 500
    with psycopg.connect(ops_url, autocommit=True) as conn:  # its safe twin: an evaluation that completes
        conn.execute("select set_config('ops.eval_at', now()::text, false), ops.beat('evaluator')")
    assert json.loads(supagate("ops", "watch", "--stack", "cli", "--stack-file", str(stack), "--format", "json",
                               env=env).stdout)["scheduler"]["ok"] is True


def test_the_test_apps_ops_migration_is_this_versions_sql():
    """Change ops.sql and the apps' migration must be regenerated (and the version bumped
    once an app may have deployed the old one): the Operations component checks ops.version()."""
    from supagate.ops.alerts import OPS_VERSION, ops_sql
    from tests.conftest import APP_MIGRATIONS

    (migration,) = APP_MIGRATIONS.glob("*_supagate_ops.sql")
    assert migration.read_text() == ops_sql()
    assert f"create function ops.version() returns integer language sql immutable set search_path = '' " \
           f"as $$ select {OPS_VERSION} $$;" in ops_sql()


def test_ops_status_lists_jobs_firing_alerts_and_undeclared_jobs(ops_url, tmp_path):
    from supagate.ops import cron

    with psycopg.connect(ops_url, autocommit=True) as conn:
        cron.ensure(conn, "status-declared", "0 4 * * *", "select 1")
        cron.ensure(conn, "status-by-hand", "0 5 * * *", "select 1")
        jobid = conn.execute("select jobid from cron.job where jobname = 'status-declared'").fetchone()[0]
        conn.execute("insert into cron.job_run_details (jobid, runid, job_pid, database, username, command, status, "
                     "return_message, start_time, end_time) values (%s, nextval('cron.runid_seq'), 1, 'postgres', "
                     "'postgres', 'select 1', 'failed', 'ERROR: boom', now() - interval '1 hour', "
                     "now() - interval '59 minutes')", (jobid,))
    stack = _stack_file(tmp_path, {"cli-status": {"kind": "sql", "query": "select 1", "above": 0}})
    document = yaml.safe_load(stack.read_text())
    document["config"]["supabase-platform:maintenance"] = {"jobs": {"status-declared": {
        "schedule": "0 4 * * *", "call": "public.nightly"}}}
    stack.write_text(yaml.safe_dump(document))
    env = {"SUPABASE_DB_URL": ops_url}
    supagate("alerts", "evaluate", "--stack", "cli", "--stack-file", str(stack), env=env)
    done = supagate("ops", "status", "--stack", "cli", "--stack-file", str(stack), "--format", "json", env=env)
    assert done.returncode == 1  # an alert is firing
    report = json.loads(done.stdout)
    job = next(j for j in report["jobs"] if j["name"] == "status-declared")
    assert job["last_status"] == "failed" and job["failures_24h"] == 1 and job["last_message"] == "ERROR: boom"
    assert any(a["rule"] == "cli-status" and a["state"] == "firing" for a in report["alerts"])
    assert any(u.startswith("status-by-hand (jobid") for u in report["undeclared_jobs"])
    assert not any(u.startswith("status-declared") for u in report["undeclared_jobs"])


def test_ops_watch_without_the_ops_schema_says_how_to_get_it(db_url, tmp_path):
    """An error the command reports in a sentence (exit 1), never a traceback."""
    stack = _stack_file(tmp_path, {"cli-x": {"kind": "sql", "query": "select 1", "above": 0}})
    done = supagate("ops", "watch", "--stack", "cli", "--stack-file", str(stack), env={"SUPABASE_DB_URL": db_url})
    assert done.returncode == 1 and "run `supagate ops init`" in done.stderr and "Traceback" not in done.stderr
