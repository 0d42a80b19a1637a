"""Dynamic provider `supabase:CronJob`: one pg_cron job, updated in place (stable jobid),
reactivated when paused by hand, refused when another role owns the name, and removed
only when this stack created or adopted it (supagate/ops/cron.py does the work).

Outputs: jobid, owner, last run time/status/message, failures in 24 h, p95 duration of
the last 50 runs, and `drift` (what differs in cron.job after `pulumi refresh`; the next
`up` puts it back)."""

from __future__ import annotations

from typing import Any

import pulumi
from pulumi.dynamic import CheckFailure, CheckResult, DiffResult, ReadResult, Resource

from components.providers.database_rows import NamedRowProvider, connected
from supagate.offline.resource_types import engine_values

_DESIRED = ("schedule", "command", "active")


class CronJobProvider(NamedRowProvider):
    @engine_values
    def check(self, _olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        """Schedules are checked before anything runs (the target's pg_cron version is
        checked again on create: `N seconds` needs 1.5, `$` 1.6)."""
        from supagate.ops.schedule import parse

        try:
            parse(news.get("schedule"))
        except ValueError as exc:
            return CheckResult(news, [CheckFailure("schedule", f"job {news.get('name')}: {exc}")])
        return CheckResult(news, [])

    @engine_values
    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        changed = [k for k in (*_DESIRED, "db_url") if olds.get(k) != news.get(k)]
        replaces = ["name"] if olds.get("name") != news.get("name") else []
        # After `pulumi refresh` found drift (paused, edited, removed by hand), `up` repairs it.
        return DiffResult(changes=bool(changed or replaces or olds.get("drift")), replaces=replaces,
                          delete_before_replace=True)

    def _apply(self, props: dict[str, Any]) -> dict[str, Any]:
        from supagate.ops import cron

        def work(conn):
            state, adopted = cron.ensure(conn, props["name"], props["schedule"], props["command"],
                                         bool(props.get("active", True)))
            return {**props, **state.outputs(), "adopted": adopted}

        return connected(props, work)

    @engine_values
    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        from supagate.ops import cron

        def work(conn):
            state = cron.read(conn, props["name"], {k: props[k] for k in _DESIRED if k in props})
            if state is None:
                return {**props, "jobid": None, "drift": [f"job {props['name']} is not in cron.job"]}
            return {**props, **state.outputs()}

        return ReadResult(id_, connected(props, work))

    @engine_values
    def delete(self, _id: str, props: dict[str, Any]) -> None:
        from supagate.ops import cron

        connected(props, lambda conn: cron.unschedule(conn, props["name"], props.get("jobid")))


class CronJob(Resource, module="supabase", name="CronJob"):
    jobid: pulumi.Output[int]
    last_status: pulumi.Output[str]
    drift: pulumi.Output[list]

    def __init__(self, name: str, props: dict[str, Any], opts: pulumi.ResourceOptions | None = None):
        opts = pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(additional_secret_outputs=["db_url"]))
        outputs = {k: None for k in ("jobid", "owner", "adopted", "last_run_at", "last_status", "last_message",
                                     "failures_24h", "p95_seconds", "drift", "next_runs")}
        super().__init__(CronJobProvider(), name, {**outputs, **props}, opts)
