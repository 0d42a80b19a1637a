"""The `alerts` and `maintenance` settings: every mistake names its key and the fix before
anything is registered; monitoring's thresholds reach the rules; two spellings of one rule
are one canonical rule."""

from __future__ import annotations

import pytest

from supagate.config.loading import SettingsError, load_settings, settings_from_stack_file
from tests.conftest import APP

BASE = {"tier": "staging", "projectRef": "a" * 20}
CHANNELS = {"hook": {"type": "webhook", "secret": "HOOK_URL"}, "issues": {"type": "githubIssue"}}
SECRETS = {"HOOK_URL": "https://hooks.example.com/x"}


def load(alerts=None, maintenance=None, **extra):
    values = {**BASE, **extra}
    if alerts is not None:
        values["alerts"] = alerts
        values.setdefault("alertSecrets", SECRETS)
    if maintenance is not None:
        values["maintenance"] = maintenance
    return load_settings("staging", values, "Pulumi.staging.yaml")


@pytest.mark.parametrize("alerts, message", [
    ({"channels": CHANNELS, "rules": {"x": {"kind": "overdueJob"}}},
     "alerts.rules.x.kind: 'overdueJob' is not a kind"),
    ({"channels": CHANNELS, "rules": {"x": {"kind": "slowQueries", "meanMs": 5, "ms": 3}}},
     "alerts.rules.x: unknown key 'ms' for kind slowQueries"),
    ({"channels": CHANNELS, "rules": {"x": {"kind": "connectionSaturation", "notify": ["pager"]}}},
     "alerts.rules.x.notify names 'pager', which is not a channel"),
    ({"channels": CHANNELS, "rules": {"x": {"kind": "deadLetters", "window": "a day"}}},
     "alerts.rules.x.window: 'a day' is not a duration"),
    ({"channels": CHANNELS, "rules": {"x": {"kind": "overdueJobs", "table": "jobs"}}},
     "alerts.rules.x.table: 'jobs' is not schema.table"),
    ({"channels": CHANNELS, "rules": {"x": {"kind": "overdueJobs", "table": "auth.users", "statusColumn": "email",
                                            "pendingValue": "alice@example.com", "dueColumn": "created_at"}}},
     "alerts.rules.x.table: 'auth.users' is in auth, which a rule may not count"),
    ({"channels": CHANNELS, "rules": {"x": {"kind": "tableGrowth", "percent": 10}}},
     "alerts.rules.x.table: required for a tableGrowth rule"),
    ({"channels": CHANNELS, "rules": {"x": {"kind": "sql", "query": "delete from public.t returning 1", "above": 1}}},
     "alerts.rules.x.query: is a DELETE statement, not a SELECT"),
    ({"channels": CHANNELS, "rules": {"x": {"kind": "sql", "query": "select pg_sleep(1)", "above": 1}}},
     "calls pg_sleep(), which changes state"),
    # A second red-team pass: WAL written past the rollback, SQL text run at run time, the network.
    ({"channels": CHANNELS, "rules": {"x": {"kind": "sql", "query": "select count(*) from (select "
                                            "pg_logical_emit_message(false, 'x', repeat('x', 1000000))) m", "above": 1}}},
     "calls pg_logical_emit_message(), which changes state"),
    ({"channels": CHANNELS, "rules": {"x": {"kind": "sql", "query": "select count(*) from ts_stat('select 1')",
                                            "above": 1}}}, "calls ts_stat(), which changes state"),
    ({"channels": CHANNELS, "rules": {"x": {"kind": "sql", "query": "select (http_delete('https://a.example')).status",
                                            "above": 1}}}, "calls http_delete(), which changes state"),
    ({"channels": CHANNELS, "rules": {"x": {"kind": "sql", "query": "select 1; select 2", "above": 1}}},
     "is 2 statements; a rule runs exactly one SELECT"),
    ({"channels": CHANNELS, "rules": {"x": {"kind": "sql",
                                            "query": "with d as (delete from t returning 1) select count(*) from d", "above": 1}}},
     "a data-modifying WITH (DELETE) writes"),
    ({"channels": CHANNELS, "rules": {"x": {"kind": "sql", "query": "select 1", "above": 1, "timeout": "1m"}}},
     "alerts.rules.x.timeout: '1m' is not between 1ms and 30s"),
    ({"channels": CHANNELS, "rules": {f"x{i}": {"kind": "sql", "query": "select 1", "above": 1, "timeout": "15s"}
                                      for i in range(3)}},
     "the sql rules' timeouts add up to 45s, and one evaluation runs every minute"),
    ({"channels": {"hook": {"type": "webhook"}}}, "a webhook channel names the alertSecrets entry"),
    # The name is written into `${{ secrets.NAME }}` in health.yml: this one would hand the
    # alert step the Pulumi token.
    ({"channels": {"hook": {"type": "webhook", "secret": "HOOK_URL }}${{ secrets.PULUMI_ACCESS_TOKEN"}}},
     "alerts.channels.hook.secret"),
    ({"channels": {"hook": {"type": "webhook", "secret": "HOOK_URL", "signWith": "K }}${{ secrets.X"}}},
     "alerts.channels.hook.signWith"),
    ({"channels": {"hook": {"type": "webhook", "secret": "MISSING_URL"}}},
     "alerts.channels.hook uses MISSING_URL but alertSecrets has no value for it"),
])
def test_alert_mistakes_name_their_key(alerts, message):
    with pytest.raises(SettingsError) as failure:
        load(alerts)
    assert message in str(failure.value)
    assert "nothing was deployed" in str(failure.value)


@pytest.mark.parametrize("maintenance, message", [
    ({"jobs": {"v": {"schedule": "61 * * * *", "vacuumAnalyze": "public.t"}}},
     "maintenance.jobs.v.schedule: '61 * * * *': minute 61 is outside 0-59"),
    ({"jobs": {"v": {"schedule": "30 seconds", "call": "public.f"}}, "pgCronVersion": "1.4.2"},
     "second schedules need pg_cron 1.5 or later"),
    ({"jobs": {"v": {"schedule": "0 3 * * *", "vacuumAnalyze": "public.t", "call": "public.f"}}},
     "a job has exactly one of vacuumAnalyze, refresh, call, sql (found vacuum_analyze, call)"),
    ({"jobs": {"v": {"schedule": "0 3 * * *", "vacuumAnalyze": "public.t", "timeout": "5m"}}},
     "maintenance.jobs.v.timeout: VACUUM-like commands run alone"),
    ({"jobs": {"v": {"schedule": "0 3 * * *", "sql": "delete from a; delete from b"}}},
     "maintenance.jobs.v.sql is 2 statements"),
    ({"jobs": {"v": {"schedule": "0 3 * * *", "call": "cleanup"}}}, "call: 'cleanup' is not schema.name"),
    ({"jobs": {"v": {"schedule": "0 3 * * *", "sql": "update public.t set score = 0"}}},
     "maintenance.jobs.v.sql is a UPDATE statement: a job's sql is one SELECT or CALL of a function"),
    ({"jobs": {"v": {"schedule": "0 3 * * *", "sql": "delete from public.t where id = id"}}},
     "maintenance.jobs.v.sql is a DELETE whose WHERE is not `column < now() - interval '...'`"),
    ({"jobs": {"supagate-heartbeat": {"schedule": "0 3 * * *", "call": "public.f"}}},
     "names starting with supagate- are supagate's own jobs"),
    ({"historyRetentionDays": 0}, "historyRetentionDays is 1-3650 days, or false"),
    ({"displayTimezone": "Berlin"}, "'Berlin' is not an IANA time zone"),
])
def test_maintenance_mistakes_name_their_key(maintenance, message):
    with pytest.raises(SettingsError) as failure:
        load(maintenance=maintenance)
    assert message in str(failure.value)


def test_monitoring_thresholds_are_the_default_rules_thresholds():
    """monitoring.maxOverdueJobs / maxDeadLetters24h change the rules (they were inert keys)."""
    settings = load({"channels": CHANNELS, "defaults": {"notify": ["issues"]},
                     "rules": {"jobs": {"kind": "overdueJobs"}}},
                    monitoring={"maxOverdueJobs": 50, "maxDeadLetters24h": 20})
    rules = {r["name"]: r for r in settings.alert_rules()}
    assert rules["jobs"]["threshold"] == 50
    assert rules["dead-letters"]["threshold"] == 20 and rules["dead-letters"]["kind"] == "deadLetters"
    explicit = load({"channels": CHANNELS, "rules": {"jobs": {"kind": "overdueJobs", "above": 3}}},
                    monitoring={"maxOverdueJobs": 50})
    assert {r["name"]: r["threshold"] for r in explicit.alert_rules()}["jobs"] == 3
    assert load().alert_rules() == []  # no channels, no rules: nothing added behind the stack's back


def test_two_spellings_of_a_rule_are_one_canonical_rule():
    a = load({"channels": CHANNELS, "rules": {"r": {"kind": "avgQueryTime", "ms": 100, "window": "15m", "for": "1h"}}})
    b = load({"channels": CHANNELS, "rules": {"r": {"kind": "avgQueryTime", "ms": 100.0, "window": "900s",
                                                    "for": "60m"}}})
    assert [r for r in a.alert_rules() if r["name"] == "r"] == [r for r in b.alert_rules() if r["name"] == "r"]


@pytest.mark.parametrize("stack", ["staging", "prod"])
def test_the_test_apps_stacks_declare_what_its_guides_ask(stack):
    settings = settings_from_stack_file(stack, APP / f"Pulumi.{stack}.yaml")
    kinds = {r["kind"] for r in settings.alert_rules()}
    assert {"overdueJobs", "deadLetters", "slowQueries", "connectionSaturation", "cronFailures",
            "schedulerHeartbeat"} <= kinds
    jobs = settings.maintenance.jobs
    assert jobs["vacuum-engagement-events"].vacuum_analyze == "public.engagement_events"
    assert jobs["refresh-latest-unified-metrics"].call == "analytics.refresh_latest_unified_metrics"
    assert jobs["cleanup-rate-limits"].call == "public.cleanup_rate_limits"
    assert settings.maintenance.history_retention_days == 14


@pytest.mark.parametrize("flag, message", [
    ({"kind": "safety", "paused": True}, "featureFlags.crisis: a safety flag stays on for everyone; remove paused"),
    ({"kind": "safety", "enabled": False}, "remove enabled: false"),
    ({"kind": "safety", "rolloutPercentage": 50}, "remove a partial rollout"),
    ({"kind": "safety", "audience": "coaches"}, "remove audience coaches"),
    ({"kind": "safety", "plan": "canary-5-25-50-100"}, "remove a plan"),
    ({"plan": "ten-percent"}, "plan 'ten-percent' is not a preset"),
    ({"plan": [5, 50, 25, 100]}, "the plan's steps must strictly increase (5%, 50%, 25%, 100%)"),
    ({"plan": [5, 50]}, "the plan must end at 100%"),
    ({"plan": [50, 100]}, "the first step is 50%; start with internal users or 10% at most"),
    ({"plan": "canary-5-25-50-100", "step": 4}, "step 4 is past the plan's last step (3)"),
    ({"plan": "canary-5-25-50-100", "soak": "a day"}, "soak: 'a day' is not a duration"),
])
def test_flag_mistakes_name_their_key(flag, message):
    with pytest.raises(SettingsError) as failure:
        load(featureFlags={"crisis": flag})
    assert message in str(failure.value)


def test_a_guard_must_be_an_alert_rule():
    with pytest.raises(SettingsError, match="featureFlags.beta.guards names 'ghost', which is not an alert rule"):
        load({"channels": CHANNELS, "rules": {"conns": {"kind": "connectionSaturation", "notify": ["issues"]}}},
             featureFlags={"beta": {"plan": "canary-5-25-50-100", "guards": ["conns", "ghost"]}})


def test_flags_in_canonical_form():
    from supagate.ops.flags import canonical

    settings = load(featureFlags={"beta": {"plan": "internal-10-50-100", "step": 1, "soak": "2d"},
                                  "crisis": {"kind": "safety"}, "old": {"enabled": True, "rolloutPercentage": 20}})
    flags = {key: canonical(key, flag) for key, flag in settings.feature_flags.items()}
    assert flags["beta"]["steps"] == [-1, 1000, 5000, 10000] and flags["beta"]["enabled"] is True
    assert flags["beta"]["soak"] == "172800 seconds" and flags["beta"]["salt"] == "beta"
    assert flags["crisis"]["enabled"] is True and flags["crisis"]["steps"] == [10000]
    assert flags["old"]["steps"] == [2000] and flags["old"]["step"] == 0  # the plan-less form keeps working


def test_a_staging_stack_reference_cannot_carry_a_workflow_expression():
    """Its organisation reaches the generated workflows' `stack-name` and env values, where
    GitHub evaluates `${{ }}`."""
    with pytest.raises(SettingsError) as failure:
        load(tier="production", stagingStack="acme${{ secrets.PULUMI_ACCESS_TOKEN }}/supabase-platform/staging")
    assert "stagingStack" in str(failure.value)
    assert load(tier="production", stagingStack="acme-co/supabase-platform/staging").staging_stack


def test_the_workflow_writer_never_builds_an_expression_from_another_name():
    from supagate.delivery.workflows import _secret

    assert _secret("HOOK_URL") == "${{ secrets.HOOK_URL }}"
    with pytest.raises(ValueError, match="not a GitHub secret name"):
        _secret("HOOK_URL }}${{ secrets.PULUMI_ACCESS_TOKEN")


def test_a_flag_key_with_a_final_newline_is_not_another_spelling_of_a_safety_flag():
    """`crisis_detection\\n` passed a `^...$` pattern and planned as a new flag, while the
    real one was removed from the stack."""
    with pytest.raises(SettingsError) as failure:
        load(featureFlags={"crisis_detection\n": {"kind": "safety"}})
    assert "flag keys are lower-case letters, digits and _" in str(failure.value)
    assert load(featureFlags={"crisis_detection": {"kind": "safety"}}).feature_flags


# An alert secret becomes a secret of the production-health environment beside the verify URL
# (GitHub ignores case in secret names), so a name the environments already hold would
# replace it: `alertSecrets.PROD_VERIFY_DB_URL` used to become the health job's database URL.
@pytest.mark.parametrize("name", ["PROD_VERIFY_DB_URL", "prod_verify_db_url", "SUPABASE_DB_URL",
                                  "PULUMI_ACCESS_TOKEN", "SUPABASE_ACCESS_TOKEN", "GITHUB_TOKEN"])
def test_an_alert_secret_named_like_an_environments_secret_is_refused(name):
    alerts = {"channels": {"hook": {"type": "webhook", "secret": "HOOK_URL", "signWith": name}}}
    with pytest.raises(SettingsError) as failure:
        load(alerts, alertSecrets={**SECRETS, name: "attacker-chosen"})
    message = str(failure.value)
    assert f"alertSecrets.{name}: " in message and "rename the entry" in message
    assert "attacker-chosen" not in message


def test_alert_secrets_differing_only_in_case_are_refused():
    alerts = {"channels": {"hook": {"type": "webhook", "secret": "HOOK_URL", "signWith": "hook_url"}}}
    with pytest.raises(SettingsError) as failure:
        load(alerts, alertSecrets={"HOOK_URL": "https://hooks.example.com/x", "hook_url": "k"})
    assert "alertSecrets.hook_url and alertSecrets.HOOK_URL differ only in case" in str(failure.value)


@pytest.mark.parametrize("name", ["BASH_ENV", "ONCALL_HMAC", "LD_PRELOAD"])
def test_a_channel_secret_with_any_other_name_loads(name):
    """BASH_ENV is only a secret's name now: the health job reads it as SUPAGATE_ALERT_BASH_ENV
    (tests/delivery/test_workflows.py)."""
    alerts = {"channels": {"hook": {"type": "webhook", "secret": "HOOK_URL", "signWith": name}}}
    assert load(alerts, alertSecrets={**SECRETS, name: "k"}).alerts.channels["hook"].sign_with == name
