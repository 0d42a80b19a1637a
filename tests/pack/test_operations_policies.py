"""The operations stack policies through the real pack process: a rule nobody hears, a
critical production rule that pages nobody, a production stack that does not watch what
the guides list, and pg_cron history nobody purges."""

from __future__ import annotations

from supagate.offline.resource_types import ALERT_CHANNEL, ALERT_RULE, CRON_JOB, MIGRATIONS
from tests.pack.test_policy_pack import _expected_level, _resource


def _rule(stack, name, kind, notify, severity="warning", tier="production"):
    return _resource(stack, ALERT_RULE, f"operations-rule-{name}", {
        "name": name, "tier": tier, "rule": {"name": name, "kind": kind, "params": {}, "threshold": 1,
                                             "severity": severity, "notify": notify}}, ["db_url"])


def _channel(stack, name, type_):
    return _resource(stack, ALERT_CHANNEL, f"operations-channel-{name}", {"name": name, "type": type_}, ["db_url"])


def _covering(stack, notify):
    return [_rule(stack, kind.lower(), kind, notify, "critical")
            for kind in ("overdueJobs", "deadLetters", "connectionSaturation", "cronFailures", "schedulerHeartbeat")]


def _migrations(stack):
    return _resource(stack, MIGRATIONS, "database-migrations", {"migrations": [], "exposed_schemas": ["public"]},
                     ["db_url"])


def _job(stack, name, command):
    return _resource(stack, CRON_JOB, f"operations-job-{name}", {"name": name, "schedule": "0 3 * * *",
                                                                  "command": command}, ["db_url"])


def _by(found, policy):
    return [v for v in found if v.rule == policy]


def test_a_well_formed_stack_passes(pack):
    stack, running, _ = pack
    resources = [_migrations(stack), _channel(stack, "oncall", "webhook"), _channel(stack, "issues", "githubIssue"),
                 *_covering(stack, ["oncall", "issues"]),
                 _job(stack, "purge", "delete from cron.job_run_details where end_time < now() - interval '14 days'")]
    found = [v for v in running.analyze_stack(resources) if v.rule.startswith(("supabase-alerts", "supabase-cron"))]
    assert found == []


def test_a_rule_nobody_hears(pack):
    stack, running, _ = pack
    resources = [_migrations(stack), _channel(stack, "issues", "githubIssue"), *_covering(stack, ["issues"]),
                 _rule(stack, "lonely", "sql", []), _rule(stack, "typo", "sql", ["isssues"])]
    found = _by(running.analyze_stack(resources), "supabase-alerts-require-channel")
    assert len(found) == 2
    assert any("Alert rule lonely notifies no declared channel" in v.message for v in found)
    assert any("Alert rule typo notifies no declared channel (isssues)" in v.message for v in found)
    assert {v.enforcement for v in found} == {_expected_level(stack, "supabase-alerts-require-channel")}


def test_a_critical_production_rule_must_page_someone(pack):
    stack, running, _ = pack
    resources = [_migrations(stack), _channel(stack, "issues", "githubIssue"), *_covering(stack, ["issues"]),
                 _rule(stack, "staging-only", "sql", ["issues"], "critical", tier="staging")]
    found = _by(running.analyze_stack(resources), "supabase-alerts-require-paging-channel")
    assert len(found) == 5 and all("only opens GitHub issues" in v.message for v in found)
    assert {v.enforcement for v in found} == {_expected_level(stack, "supabase-alerts-require-paging-channel")}


def test_a_stack_that_does_not_watch_what_the_guides_list(pack):
    stack, running, _ = pack
    resources = [_migrations(stack), _channel(stack, "oncall", "webhook"),
                 _rule(stack, "conns", "connectionSaturation", ["oncall"], "critical")]
    (found,) = _by(running.analyze_stack(resources), "supabase-alerts-require-coverage")
    assert "overdueJobs, deadLetters, cronFailures, schedulerHeartbeat" in found.message
    assert found.enforcement == _expected_level(stack, "supabase-alerts-require-coverage")


def test_pg_cron_history_nobody_purges(pack):
    stack, running, _ = pack
    found = _by(running.analyze_stack([_migrations(stack), _job(stack, "vacuum", "VACUUM (ANALYZE) public.t")]),
                "supabase-cron-require-history-retention")
    assert len(found) == 1 and "never cleans" in found[0].message


def test_a_short_soak_is_refused_where_the_stack_asks_for_one(pack):
    """prod.json sets minimumSoak to a day; staging's config sets none."""
    from supagate.offline.resource_types import FEATURE_FLAG

    stack, running, _ = pack
    flag = _resource(stack, FEATURE_FLAG, "operations-flag-beta", {"name": "beta", "flag": {
        "key": "beta", "kind": "release", "steps": [500, 2500, 5000, 10000], "step": 0, "soak": "3600 seconds"}},
        ["db_url"])
    found = _by(running.analyze(flag), "supabase-flags-plan-valid")
    if stack == "prod":
        assert len(found) == 1 and "under this stack's minimum of 86400 seconds" in found[0].message
    else:
        assert found == []


def test_a_guard_that_is_not_a_rule(pack):
    from supagate.offline.resource_types import FEATURE_FLAG

    stack, running, _ = pack
    flag = _resource(stack, FEATURE_FLAG, "operations-flag-beta", {"name": "beta", "flag": {
        "key": "beta", "kind": "release", "steps": [10000], "step": 0, "guards": ["conns", "ghost"]}}, ["db_url"])
    found = _by(running.analyze_stack([_migrations(stack), _rule(stack, "conns", "connectionSaturation", []), flag]),
                "supabase-flags-guards-exist")
    assert len(found) == 1 and "guarded by ghost" in found[0].message


def test_a_public_function_needs_a_probed_rate_limit(pack):
    from supagate.offline.resource_types import EDGE_FUNCTION, RATE_LIMIT_POLICY

    stack, running, _ = pack

    def function(slug, verify_jwt):
        return _resource(stack, EDGE_FUNCTION, f"project-fn-{slug}", {"slug": slug, "verify_jwt": verify_jwt},
                         ["access_token"])

    def limit(slug, probe):
        return _resource(stack, RATE_LIMIT_POLICY, f"operations-rate-limit-{slug}",
                         {"name": slug, "max_requests": 100, "window_seconds": 60, "probe": probe}, ["db_url"])

    resources = [function("webhook-terra", False), function("stripe", False), function("unclear", None),
                 function("health-check", True), limit("webhook-terra", True), limit("stripe", False)]
    found = _by(running.analyze_stack(resources), "supabase-ratelimits-require-probe")
    assert sorted(v.message.split("Function ")[1].split()[0] for v in found) == ["stripe", "unclear"]
    assert {v.enforcement for v in found} == {_expected_level(stack, "supabase-ratelimits-require-probe")}
