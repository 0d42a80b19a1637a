"""Dynamic providers `supabase:AlertRule` and `supabase:AlertChannel`: one row each in
ops.alert_rules / ops.alert_channels, which pg_cron's evaluator reads every minute.

A rule's inputs are its canonical form (supagate/ops/kinds.py), so the diff is semantic:
`15m` and `900s` are the same rule. `read` returns the stored row and the live alert state;
a row edited by hand shows as drift on `pulumi refresh` and is put back by the next `up`.
Channels hold the names of their secrets only; the values stay Pulumi secrets."""

from __future__ import annotations

from typing import Any

import pulumi
from pulumi.dynamic import DiffResult, ReadResult, Resource

from components.providers.database_rows import NamedRowProvider, connected
from supagate.offline.resource_types import engine_values


class AlertRuleProvider(NamedRowProvider):
    @engine_values
    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        changed = olds.get("rule") != news.get("rule") or olds.get("db_url") != news.get("db_url")
        replaces = ["name"] if olds.get("name") != news.get("name") else []
        return DiffResult(changes=bool(changed or replaces or olds.get("drift")), replaces=replaces,
                          delete_before_replace=True)

    def _apply(self, props: dict[str, Any]) -> dict[str, Any]:
        from supagate.ops import alerts

        def work(conn):
            alerts.sync_rules(conn, [props["rule"]], set())
            return {**props, "drift": [], "state": "inactive"}

        return connected(props, work)

    @engine_values
    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        from supagate.ops import alerts

        def work(conn):
            stored = alerts.read_rules(conn, [props["name"]]).get(props["name"])
            want = props.get("rule") or {}
            if stored is None:
                drift = [f"rule {props['name']} is not in ops.alert_rules"]
            else:
                drift = [f"{key} is {stored.get(key)!r} in the database, {want.get(key)!r} in the stack"
                         for key in sorted(want) if stored.get(key) != want.get(key)]
            state = conn.execute("select state from ops.alert_state where rule = %s", (props["name"],)).fetchone()
            return {**props, "drift": drift, "state": state[0] if state else "inactive"}

        return ReadResult(id_, connected(props, work))

    @engine_values
    def delete(self, _id: str, props: dict[str, Any]) -> None:
        from supagate.ops import alerts

        connected(props, lambda conn: alerts.sync_rules(conn, [], {props["name"]}))


class AlertChannelProvider(NamedRowProvider):
    @engine_values
    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        keys = ("type", "secret", "sign_with", "labels", "db_url")
        replaces = ["name"] if olds.get("name") != news.get("name") else []
        return DiffResult(changes=any(olds.get(k) != news.get(k) for k in keys) or bool(replaces),
                          replaces=replaces, delete_before_replace=True)

    def _apply(self, props: dict[str, Any]) -> dict[str, Any]:
        from supagate.ops import alerts

        return connected(props, lambda conn: alerts.sync_channels(conn, {props["name"]: props}, set()) or props)

    @engine_values
    def delete(self, _id: str, props: dict[str, Any]) -> None:
        from supagate.ops import alerts

        connected(props, lambda conn: alerts.sync_channels(conn, {}, {props["name"]}))


class AlertRule(Resource, module="supabase", name="AlertRule"):
    state: pulumi.Output[str]
    drift: pulumi.Output[list]

    def __init__(self, name: str, props: dict[str, Any], opts: pulumi.ResourceOptions | None = None):
        opts = pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(additional_secret_outputs=["db_url"]))
        super().__init__(AlertRuleProvider(), name, {"state": None, "drift": None, **props}, opts)


class AlertChannel(Resource, module="supabase", name="AlertChannel"):
    def __init__(self, name: str, props: dict[str, Any], opts: pulumi.ResourceOptions | None = None):
        opts = pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(additional_secret_outputs=["db_url"]))
        super().__init__(AlertChannelProvider(), name, props, opts)
