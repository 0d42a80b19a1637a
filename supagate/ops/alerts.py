"""Alert rules against a database: evaluate them (the SQL evaluator in ops.sql is the one
engine: pg_cron, `supagate alerts evaluate` and the tests all call ops.evaluate_alerts),
keep ops.alert_rules / ops.alert_channels in step with the stack, render Prometheus rules.
"""

from __future__ import annotations

import json
from datetime import datetime
from importlib import resources
from typing import Any

from supagate.errors import Failed

OPS_VERSION = 2  # 2: the alert-reader boundary, delivery roles, rate-limit caps (issue 23)
RULE_COLUMNS = ("kind", "params", "threshold", "comparison", "for_interval", "keep_firing_for", "repeat_interval",
                "severity", "notify")


class OpsMissing(Failed):
    """The database lacks the ops schema (or has another version of it)."""


def ops_sql() -> str:
    return resources.files("supagate.ops").joinpath("sql/ops.sql").read_text()


def require_ops(conn) -> None:
    row = conn.execute("select to_regprocedure('ops.version()') is not null").fetchone()
    version = conn.execute("select ops.version()").fetchone()[0] if row[0] else None
    if version != OPS_VERSION:
        found = "no ops schema" if version is None else f"ops schema version {version}"
        raise OpsMissing(f"the database has {found}; supagate {OPS_VERSION} needs version {OPS_VERSION}: run "
                         "`supagate ops init` (it writes the migration that creates it) and deploy it")


REST_TIMEOUT_MS = 50_000  # the statement evaluating every rule but the sql ones (they have their own)


def evaluation_steps(rules: list[dict[str, Any]], skip: tuple[str, ...] = (),
                     cap_ms: int | None = None) -> list[tuple[int, list[str] | None, list[str] | None]]:
    """The statements of one evaluation, as (statement timeout in ms, p_only, p_skip): each
    sql rule alone under its own timeout (PostgreSQL arms statement_timeout per top-level
    statement, never inside a function, so a slow rule stalls only itself), then the rest.
    `skip` names rules another statement evaluates (the heartbeat job's); `cap_ms` shortens
    every timeout (the proof in the shadow)."""
    from supagate.ops.kinds import interval_seconds

    cap = cap_ms or REST_TIMEOUT_MS
    steps: list[tuple[int, list[str] | None, list[str] | None]] = []
    alone = []
    for rule in rules:
        if rule["kind"] == "sql" and rule["name"] not in skip:
            timeout = interval_seconds((rule.get("params") or {}).get("timeout") or "5 seconds")
            steps.append((min(max(int(timeout * 1000), 1), cap), [rule["name"]], None))
            alone.append(rule["name"])
    if any(r["name"] not in skip and r["kind"] != "sql" for r in rules):
        steps.append((min(REST_TIMEOUT_MS, cap), None, sorted({*alone, *skip})))
    return steps


def evaluate(conn, rules: list[dict[str, Any]] | None, at: datetime | None = None,
             cap_ms: int | None = None) -> list[dict[str, Any]]:
    """One evaluation at `at` (default: the database's now()), in one transaction of one
    statement per step (evaluation_steps); `rules` None evaluates the rules stored in
    ops.alert_rules. Returns each rule's state as the CLI prints it, in the rules' order."""
    require_ops(conn)
    given = json.dumps(rules) if rules is not None else None
    if rules is None:
        rules = [{"name": n, "kind": k, "params": p} for n, k, p in
                 conn.execute("select name, kind, params from ops.alert_rules order by name").fetchall()]
    rows = []
    with conn.transaction():
        for timeout_ms, only, skip in evaluation_steps(rules, cap_ms=cap_ms):
            conn.execute(f"set local statement_timeout = {int(timeout_ms)}")
            rows += conn.execute("select rule, state, value, since, error from ops.evaluate_alerts(%s, %s::jsonb, %s, %s)",
                                 (at, given, only, skip)).fetchall()
    order = {rule["name"]: index for index, rule in enumerate(rules)}
    return [{"rule": rule, "state": state, "value": float(value) if value is not None else None,
             "since": since.isoformat() if since else None, **({"error": error} if error else {})}
            for rule, state, value, since, error in sorted(rows, key=lambda row: order.get(row[0], len(order)))]


def sync_rules(conn, rules: list[dict[str, Any]], previously: set[str]) -> None:
    """Upsert the stack's rules; remove the ones this stack managed and no longer declares."""
    require_ops(conn)
    with conn.transaction():
        for rule in rules:
            values = [json.dumps(rule[c]) if c == "params" else rule[c] for c in RULE_COLUMNS]
            conn.execute(
                f"insert into ops.alert_rules (name, {', '.join(RULE_COLUMNS)}, updated_at) "
                f"values (%s, {', '.join(['%s'] * len(RULE_COLUMNS))}, now()) on conflict (name) do update set "
                + ", ".join(f"{c} = excluded.{c}" for c in (*RULE_COLUMNS, "updated_at")),
                [rule["name"], *values])
        gone = sorted(previously - {r["name"] for r in rules})
        if gone:
            conn.execute("delete from ops.alert_rules where name = any(%s)", (gone,))
            conn.execute("delete from ops.alert_state where rule = any(%s)", (gone,))


def read_rules(conn, names: list[str]) -> dict[str, dict[str, Any]]:
    """The stored rules, in canonical form (as the stack writes them), by name."""
    require_ops(conn)
    rows = conn.execute(f"select name, {', '.join(RULE_COLUMNS)} from ops.alert_rules where name = any(%s)",
                        (names,)).fetchall()
    stored = {}
    for name, *values in rows:
        rule = dict(zip(RULE_COLUMNS, values))
        for key in ("for_interval", "keep_firing_for", "repeat_interval"):
            rule[key] = f"{int(rule[key].total_seconds())} seconds"
        rule["threshold"] = float(rule["threshold"])
        stored[name] = {"name": name, **rule}
    return stored


def sync_channels(conn, channels: dict[str, dict[str, Any]], previously: set[str]) -> None:
    """Upsert ops.alert_channels (names of secrets only, never their values)."""
    require_ops(conn)
    with conn.transaction():
        for name, channel in channels.items():
            conn.execute(
                "insert into ops.alert_channels (name, type, secret_name, sign_with, labels) values (%s, %s, %s, %s, %s) "
                "on conflict (name) do update set type = excluded.type, secret_name = excluded.secret_name, "
                "sign_with = excluded.sign_with, labels = excluded.labels",
                (name, channel["type"], channel.get("secret") or None, channel.get("sign_with") or None,
                 list(channel.get("labels") or [])))
        gone = sorted(previously - set(channels))
        if gone:
            conn.execute("delete from ops.alert_channels where name = any(%s)", (gone,))


def firing(conn) -> list[dict[str, Any]]:
    require_ops(conn)
    rows = conn.execute("select s.rule, s.state, s.value, s.active_since, s.error, r.severity from ops.alert_state s "
                        "left join ops.alert_rules r on r.name = s.rule "
                        "where s.state <> 'inactive' or s.error is not null order by s.rule").fetchall()
    return [{"rule": r, "state": st, "value": float(v) if v is not None else None,
             "since": since.isoformat() if since else None, "severity": sev, **({"error": e} if e else {})}
            for r, st, v, since, e, sev in rows]


def render_prometheus(rules: list[dict[str, Any]]) -> tuple[str, list[str]]:
    """A Prometheus rules file for the kinds the Supabase Metrics API can express, and the
    names of the rules it leaves out (their signal is only in the database)."""
    import yaml

    from supagate.ops.kinds import promql

    rendered, skipped = [], []
    for rule in rules:
        expr = promql(rule)
        if expr is None:
            skipped.append(rule["name"])
            continue
        entry = {"alert": rule["name"], "expr": expr, "for": _duration(rule["for_interval"]),
                 "labels": {"severity": rule["severity"]},
                 "annotations": {"summary": f"{rule['kind']} {rule['comparison']} {rule['threshold']:g}"}}
        keep = _duration(rule["keep_firing_for"])
        if keep != "0s":
            entry["keep_firing_for"] = keep
        rendered.append(entry)
    document = {"groups": [{"name": "supabase-platform", "interval": "1m", "rules": rendered}]}
    return yaml.safe_dump(document, sort_keys=False), skipped


def _duration(interval_text: str) -> str:
    from supagate.ops.kinds import interval_seconds

    return f"{int(interval_seconds(interval_text))}s"
