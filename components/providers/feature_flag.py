"""Dynamic provider `supabase:FeatureFlag`: one row of ops.flags, written by ops.apply_flag,
the one place the rollout rules live. The preview runs it as a dry run against the
database clock, so a skipped step, a step before its soak or under a firing guard fails
`pulumi preview` with the time left; `pulumi up` runs it for real. A safety flag cannot be
deleted (the database refuses too). Outputs: the position the database holds (step,
step_entered_at), which an auto rollout moves on its own."""

from __future__ import annotations

import json
from typing import Any

import pulumi
from pulumi.dynamic import DiffResult, ReadResult, Resource

from components.providers.database_rows import NamedRowProvider, connected
from supagate.offline.resource_types import engine_values

_POSITION = ("step", "step_entered_at")


def _apply(conn, flag: dict[str, Any], dry_run: bool) -> str:
    with conn.transaction():
        return conn.execute("select ops.apply_flag(%s::jsonb, %s)", (json.dumps(flag), dry_run)).fetchone()[0]


def _position(conn, key: str) -> dict[str, Any] | None:
    row = conn.execute("select step, step_entered_at, kind, enabled, paused, steps, audience from ops.flags "
                       "where key = %s", (key,)).fetchone()
    if row is None:
        return None
    step, entered, kind, enabled, paused, steps, audience = row
    return {"step": step, "step_entered_at": entered.isoformat(), "kind": kind, "enabled": enabled,
            "paused": paused, "steps": list(steps), "audience": audience}


def planned_change(old: dict[str, Any], new: dict[str, Any]) -> str:
    """What the preview says will happen to the flag (Check's output shows in the diff;
    a provider's log lines never reach the engine's display)."""
    from supagate.ops.flags import describe

    steps, step = new.get("steps") or [], int(new.get("step") or 0)
    where = describe(int(steps[step])) if step < len(steps) else "?"
    if new.get("kind") == "safety":
        return f"{new.get('key')}: safety flag, on for everyone"
    if not old:
        return f"{new.get('key')}: created at step {step} ({where})"
    before = int(old.get("step") or 0)
    if new.get("advance") == "auto":
        return f"{new.get('key')}: auto rollout; the database moves it (stack says step {step})"
    if step > before:
        return f"{new.get('key')}: step {before} -> {step} ({where}), if its soak has passed and its guards are quiet"
    if step < before:
        return f"{new.get('key')}: back from step {before} to {step} ({where})"
    return f"{new.get('key')}: stays at step {step} ({where})" + (", paused" if new.get("paused") else "")


class FeatureFlagProvider(NamedRowProvider):
    @engine_values
    def check(self, olds: dict[str, Any], news: dict[str, Any]):
        from pulumi.dynamic import CheckFailure, CheckResult

        from supagate.pack.ops_checks import flag_safety_violations

        # A safety flag that is not on for everyone stops here, before any database sees it.
        failures = [CheckFailure("flag", f.message) for f in flag_safety_violations(news)]
        return CheckResult({**news, "planned_change": planned_change(olds.get("flag") or {}, news.get("flag") or {})},
                           failures)

    @engine_values
    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        old, new = olds.get("flag") or {}, news.get("flag") or {}
        if old.get("kind") == "safety" and new.get("kind") != "safety":
            raise Exception(f"flag {new.get('key')}: a safety flag cannot change kind; it stays on")
        changed = old != new or olds.get("db_url") != news.get("db_url") or bool(olds.get("drift"))
        if changed and new.get("step") != olds.get("step"):
            # The rollout rules need the database clock and the guards' state: a dry run.
            connected(news, lambda conn: _apply(conn, new, dry_run=True))  # raises with the reason and the time left
        replaces = ["key"] if old.get("key") != new.get("key") else []
        return DiffResult(changes=changed or bool(replaces), replaces=replaces, delete_before_replace=True)

    def _apply(self, props: dict[str, Any]) -> dict[str, Any]:
        def work(conn):
            outcome = _apply(conn, props["flag"], dry_run=False)
            return {**props, **(_position(conn, props["flag"]["key"]) or {}), "outcome": outcome, "drift": []}

        return connected(props, work)

    @engine_values
    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        want = props.get("flag") or {}

        def work(conn):
            live = _position(conn, want["key"])
            if live is None:
                return {**props, "drift": [f"flag {want['key']} is not in ops.flags"]}
            drift = [f"{key} is {live[key]!r} in the database, {want.get(key)!r} in the stack"
                     for key in ("kind", "enabled", "paused", "steps", "audience") if live[key] != want.get(key)]
            if want.get("advance") != "auto" and live["step"] != want.get("step"):
                drift.append(f"step is {live['step']} in the database, {want.get('step')} in the stack")
            return {**props, **{k: live[k] for k in _POSITION}, "drift": drift}

        return ReadResult(id_, connected(props, work))

    @engine_values
    def delete(self, _id: str, props: dict[str, Any]) -> None:
        flag = props.get("flag") or {}
        if flag.get("kind") == "safety":
            raise Exception(f"flag {flag.get('key')} is a safety flag: it cannot be removed from the stack "
                            "(the database refuses to delete it too); keep it declared")
        connected(props, lambda conn: conn.execute("delete from ops.flags where key = %s", (flag["key"],)))


class FeatureFlag(Resource, module="supabase", name="FeatureFlag"):
    step: pulumi.Output[int]
    step_entered_at: pulumi.Output[str]

    def __init__(self, name: str, props: dict[str, Any], opts: pulumi.ResourceOptions | None = None):
        opts = pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(additional_secret_outputs=["db_url"]))
        super().__init__(FeatureFlagProvider(), name,
                         {"step": None, "step_entered_at": None, "outcome": None, "drift": None, **props}, opts)
