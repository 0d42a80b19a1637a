"""supabase:AlertRule and supabase:AlertChannel in the SDK's provider host over gRPC: one
row each, a semantic diff, a row edited by hand found by refresh and put back by up, and
the stored rules are what pg_cron's evaluation (no rules passed) reads."""

from __future__ import annotations

from datetime import datetime, timezone

import psycopg

from components.providers.alerting import AlertChannelProvider, AlertRuleProvider
from supagate.ops.alerts import evaluate
from supagate.ops.kinds import canonical
from tests.provider_host import ProviderHost, without_provider

URN = "urn:pulumi:prod::supabase-platform::pulumi-python:dynamic/supabase:{}::operations-{}"
DIFF_NONE, DIFF_SOME = 1, 2


def _rule_props(url, spec):
    return {"db_url": url, "name": "res-rule", "tier": "production", "rule": canonical("res-rule", spec, {})}


def test_a_rule_is_a_row_with_a_semantic_diff_and_repairable_drift(ops_url):
    spec = {"kind": "sql", "query": "select 7", "above": 5, "for": "15m", "notify": ["res-hook"]}
    with ProviderHost(AlertRuleProvider(), URN.format("AlertRule", "rule-res-rule")) as host:
        host.configure()
        id_, outs = host.create(_rule_props(ops_url, spec))
        same = _rule_props(ops_url, {**spec, "for": "900s"})  # another spelling of the same rule
        assert host.diff(id_, without_provider(outs), same).changes == DIFF_NONE
        stricter = _rule_props(ops_url, {**spec, "above": 6})
        assert host.diff(id_, without_provider(outs), stricter).changes == DIFF_SOME

        with psycopg.connect(ops_url, autocommit=True) as conn:
            conn.execute("update ops.alert_rules set threshold = 1000 where name = 'res-rule'")
            # the evaluation reads the stored rules when none are passed
            states = {s["rule"]: s["state"] for s in evaluate(conn, None, datetime(2034, 1, 1, tzinfo=timezone.utc))}
            assert states["res-rule"] == "inactive"  # 7 is not above the hand-edited 1000
        refreshed = host.read(id_, without_provider(outs))
        assert refreshed["drift"] == ["threshold is 1000.0 in the database, 5 in the stack"]
        assert host.diff(id_, refreshed, _rule_props(ops_url, spec)).changes == DIFF_SOME
        outs = host.update(id_, refreshed, _rule_props(ops_url, spec))
        with psycopg.connect(ops_url, autocommit=True) as conn:
            states = {s["rule"]: s["state"] for s in evaluate(conn, None, datetime(2034, 1, 1, 0, 1, tzinfo=timezone.utc))}
            assert states["res-rule"] == "pending"  # held for less than its 15 minutes
        assert host.read(id_, without_provider(outs))["state"] == "pending"

        host.delete(id_, without_provider(outs))
    with psycopg.connect(ops_url, autocommit=True) as conn:
        assert conn.execute("select count(*) from ops.alert_rules where name = 'res-rule'").fetchone() == (0,)
        assert conn.execute("select count(*) from ops.alert_state where rule = 'res-rule'").fetchone() == (0,)


def test_a_channel_row_holds_secret_names_never_values(ops_url):
    props = {"db_url": ops_url, "name": "res-hook", "type": "webhook", "secret": "RES_HOOK_URL",
             "sign_with": "RES_HOOK_KEY", "labels": ["alert"]}
    with ProviderHost(AlertChannelProvider(), URN.format("AlertChannel", "channel-res-hook")) as host:
        host.configure()
        id_, outs = host.create(props)
        with psycopg.connect(ops_url, autocommit=True) as conn:
            row = conn.execute("select type, secret_name, sign_with from ops.alert_channels where name = 'res-hook'")
            assert row.fetchone() == ("webhook", "RES_HOOK_URL", "RES_HOOK_KEY")
        assert host.diff(id_, without_provider(outs), {**props, "type": "slack"}).changes == DIFF_SOME
        host.delete(id_, without_provider(outs))
    with psycopg.connect(ops_url, autocommit=True) as conn:
        assert conn.execute("select count(*) from ops.alert_channels where name = 'res-hook'").fetchone() == (0,)
