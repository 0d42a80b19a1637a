"""supabase:FeatureFlag in the SDK's provider host over gRPC: the preview (Diff) refuses a
skipped step, an early step (saying when it can start) and a step under a firing guard,
against the database clock; going back is fine; a safety flag cannot be narrowed (Check),
deleted or change kind; refresh reports a flag changed by hand."""

from __future__ import annotations

import psycopg
import pytest

from components.providers.feature_flag import FeatureFlagProvider
from tests.provider_host import ProviderHost, without_provider

URN = "urn:pulumi:prod::supabase-platform::pulumi-python:dynamic/supabase:FeatureFlag::operations-flag-{}"
DIFF_NONE, DIFF_SOME = 1, 2


def _props(url, key, step, kind="release", **flag):
    spec = {"key": key, "kind": kind, "description": "", "salt": key, "enabled": True, "audience": "everyone",
            "steps": [500, 2500, 5000, 10000] if kind != "safety" else [10000], "step": step,
            "soak": "86400 seconds", "paused": False, "advance": "manual", "guards": ["flag-guard"],
            "internal_users": [], **flag}
    return {"db_url": url, "name": key, "tier": "production", "flag": spec}


@pytest.fixture(scope="module")
def host():
    with ProviderHost(FeatureFlagProvider(), URN.format("flags")) as running:
        running.configure()
        yield running


def test_the_preview_enforces_one_step_after_the_soak_with_quiet_guards(ops_url, host):
    checked, _ = host.check({}, _props(ops_url, "res_canary", 0))
    assert checked["planned_change"] == "res_canary: created at step 0 (5%)"
    id_, outs = host.create(_props(ops_url, "res_canary", 0))
    moving, _ = host.check(_props(ops_url, "res_canary", 0), _props(ops_url, "res_canary", 1))
    assert moving["planned_change"] == ("res_canary: step 0 -> 1 (25%), if its soak has passed and its guards "
                                        "are quiet")
    assert outs["step"] == 0 and outs["outcome"] == "create res_canary at step 0"
    state = without_provider(outs)
    with pytest.raises(Exception, match="step 0 -> 2 skips a step"):
        host.diff(id_, state, _props(ops_url, "res_canary", 2))
    with pytest.raises(Exception) as early:
        host.diff(id_, state, _props(ops_url, "res_canary", 1))
    assert "res_canary: step 1 can start at" in str(early.value) and "left" in str(early.value)

    with psycopg.connect(ops_url, autocommit=True) as conn:
        conn.execute("update ops.flags set step_entered_at = now() - interval '2 days' where key = 'res_canary'")
        conn.execute("insert into ops.alert_state (rule, state) values ('flag-guard', 'firing') "
                     "on conflict (rule) do update set state = 'firing'")
    with pytest.raises(Exception, match="guard rule\\(s\\) flag-guard firing"):
        host.diff(id_, state, _props(ops_url, "res_canary", 1))
    with psycopg.connect(ops_url, autocommit=True) as conn:
        conn.execute("update ops.alert_state set state = 'inactive' where rule = 'flag-guard'")
    assert host.diff(id_, state, _props(ops_url, "res_canary", 1)).changes == DIFF_SOME
    outs = host.update(id_, state, _props(ops_url, "res_canary", 1))
    assert outs["step"] == 1 and outs["outcome"] == "advance res_canary to step 1"
    assert host.diff(id_, without_provider(outs), _props(ops_url, "res_canary", 1)).changes == DIFF_NONE
    back = host.update(id_, without_provider(outs), _props(ops_url, "res_canary", 0))  # back: any time
    assert back["step"] == 0


def test_refresh_reports_a_flag_changed_by_hand(ops_url, host):
    id_, outs = host.create(_props(ops_url, "res_hand", 0))
    with psycopg.connect(ops_url, autocommit=True) as conn:
        conn.execute("update ops.flags set paused = true where key = 'res_hand'")
    refreshed = host.read(id_, without_provider(outs))
    assert refreshed["drift"] == ["paused is True in the database, False in the stack"]
    assert host.diff(id_, refreshed, _props(ops_url, "res_hand", 0)).changes == DIFF_SOME
    host.update(id_, refreshed, _props(ops_url, "res_hand", 0))
    with psycopg.connect(ops_url, autocommit=True) as conn:
        assert conn.execute("select paused from ops.flags where key = 'res_hand'").fetchone() == (False,)


def test_a_safety_flag_cannot_be_removed_or_demoted(ops_url, host):
    for narrowed in ({"paused": True}, {"enabled": False}, {"audience": "coaches"}, {"steps": [500, 10000]}):
        _, failures = host.check({}, _props(ops_url, "res_crisis", 0, kind="safety", guards=[], **narrowed))
        assert failures and "Safety flag res_crisis is" in failures[0][1], narrowed
    id_, outs = host.create(_props(ops_url, "res_crisis", 0, kind="safety", guards=[]))
    with pytest.raises(Exception, match="res_crisis is a safety flag: it cannot be removed"):
        host.delete(id_, without_provider(outs))
    with pytest.raises(Exception, match="a safety flag cannot change kind"):
        host.diff(id_, without_provider(outs), _props(ops_url, "res_crisis", 0, guards=[]))
    with psycopg.connect(ops_url, autocommit=True) as conn:
        assert conn.execute("select enabled from ops.flag_evaluate('res_crisis', 'u')").fetchone() == (True,)
