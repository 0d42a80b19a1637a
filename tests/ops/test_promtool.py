"""Our alert semantics against Prometheus's own: the same series go to `promtool test rules`
(Debian's prometheus 2.42.0, whose keep_firing_for is the reference) and to
ops.evaluate_alerts; at every evaluation minute the set of firing alerts must be the same.
Every generated test names its alertname (an unnamed test once passed vacuously:
prometheus#8504), and one deliberately wrong expectation must make promtool fail, so the
comparison is known to bite."""

from __future__ import annotations

import random
import subprocess
from datetime import datetime, timedelta, timezone

import psycopg
import pytest
import yaml

from supagate.ops.alerts import evaluate
from supagate.ops.kinds import canonical
from supagate.tools import promtool
from tests.conftest import ROOT

MINUTES = 40
THRESHOLD = 5
SCENARIOS = [(hold, keep) for hold in (0, 1, 3, 5) for keep in (0, 2, 4)]
T0 = datetime(2031, 6, 1, tzinfo=timezone.utc)


@pytest.fixture(scope="module")
def promtool_path() -> str:
    found = promtool(ROOT)
    if not found:
        pytest.fail("promtool is missing: run scripts/setup (it extracts it from Debian's prometheus package)")
    return found


def _series(rng: random.Random) -> list[int]:
    """Runs of high and low values of random lengths, so `for` and keep_firing_for matter."""
    values: list[int] = []
    while len(values) <= MINUTES:
        high = rng.random() < 0.5
        values += [rng.randint(6, 10) if high else rng.randint(0, 5)] * rng.randint(1, 7)
    return values[:MINUTES + 1]


def _metric(name: str) -> str:
    return name.replace("-", "_") + "_series"


def _ours(url: str, scenarios: list[tuple[str, list[int], int, int]]) -> dict[str, list[bool]]:
    firing: dict[str, list[bool]] = {name: [] for name, *_ in scenarios}
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("create schema if not exists promtest")
        conn.execute("create table promtest.series (name text, t timestamptz, v numeric)")
        conn.execute("grant usage on schema promtest to supagate_alert_reader; "
                     "grant select on promtest.series to supagate_alert_reader")
        rules = []
        for name, values, hold, keep in scenarios:
            conn.execute("insert into promtest.series select %s, %s + make_interval(mins => i::int), v "
                         "from unnest(%s::numeric[]) with ordinality as u(v, i)", (name, T0 - timedelta(minutes=1), values))
            query = (f"select v from promtest.series where name = '{name}' and t <= ops.now() "
                     "order by t desc limit 1")
            rules.append(canonical(name, {"kind": "sql", "query": query, "above": THRESHOLD,
                                          "for": f"{hold}m", "keepFiringFor": f"{keep}m"}, {}))
        for minute in range(MINUTES + 1):
            for state in evaluate(conn, rules, T0 + timedelta(minutes=minute)):
                firing[state["rule"]].append(state["state"] == "firing")
    return firing


def _promtool_files(tmp_path, scenarios, firing, flip: str | None = None):
    rules = {"groups": [{"name": "diff", "interval": "1m", "rules": [
        {"alert": name, "expr": f"{_metric(name)} > {THRESHOLD}", "for": f"{hold}m",
         **({"keep_firing_for": f"{keep}m"} if keep else {}), "labels": {"severity": "warning"}}
        for name, _values, hold, keep in scenarios]}]}
    tests = []
    for name, values, _hold, _keep in scenarios:
        checks = []
        for minute in range(MINUTES + 1):
            expected = firing[name][minute] != (flip == f"{name}@{minute}")
            checks.append({"eval_time": f"{minute}m", "alertname": name,
                           "exp_alerts": [{"exp_labels": {"severity": "warning", "job": "diff"}}] if expected else []})
        tests.append({"interval": "1m",
                      "input_series": [{"series": f'{_metric(name)}{{job="diff"}}', "values": " ".join(map(str, values))}],
                      "alert_rule_test": checks})
    (tmp_path / "rules.yml").write_text(yaml.safe_dump(rules, sort_keys=False))
    (tmp_path / "tests.yml").write_text(yaml.safe_dump({"rule_files": ["rules.yml"], "evaluation_interval": "1m",
                                                        "tests": tests}, sort_keys=False))
    return tmp_path / "tests.yml"


def test_pending_firing_and_resolved_times_match_prometheus(ops_url, promtool_path, tmp_path):
    rng = random.Random(20261122)
    scenarios = [(f"p{i}-h{hold}-k{keep}", _series(rng), hold, keep) for i, (hold, keep) in enumerate(SCENARIOS)]
    firing = _ours(ops_url, scenarios)
    assert any(any(f) for f in firing.values()) and not all(all(f) for f in firing.values())
    done = subprocess.run([promtool_path, "test", "rules", str(_promtool_files(tmp_path, scenarios, firing))],
                          capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]

    # The comparison bites: one wrong minute fails promtool.
    name = scenarios[3][0]
    wrong = _promtool_files(tmp_path, scenarios, firing, flip=f"{name}@{MINUTES // 2}")
    done = subprocess.run([promtool_path, "test", "rules", str(wrong)], capture_output=True, text=True,
                          cwd=tmp_path, timeout=120)
    assert done.returncode != 0 and name in done.stdout + done.stderr


def test_rendered_rules_are_valid_prometheus(promtool_path, tmp_path):
    """`supagate alerts render --prometheus` on the test app's prod stack passes
    `promtool check rules`, and leaves out the kinds with no Metrics API series."""
    from supagate.config.loading import settings_from_stack_file
    from supagate.ops.alerts import render_prometheus
    from tests.conftest import APP

    settings = settings_from_stack_file("prod", APP / "Pulumi.prod.yaml")
    text, skipped = render_prometheus(settings.alert_rules())
    path = tmp_path / "rules.yml"
    path.write_text(text)
    done = subprocess.run([promtool_path, "check", "rules", str(path)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    rendered = {r["alert"] for r in yaml.safe_load(text)["groups"][0]["rules"]}
    assert rendered == {"avg-query-time", "connections", "rollback-ratio"}
    assert "overdue-jobs" in skipped and "cron-failures" in skipped
