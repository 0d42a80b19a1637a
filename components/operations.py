"""Operations as resources: alert channels and rules evaluated by pg_cron inside the
database, and the maintenance jobs (the stack's own and supagate's: alert evaluation, the
scheduler heartbeat, pg_cron history retention)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pulumi

from components.providers.alerting import AlertChannel, AlertRule
from components.providers.cron_job import CronJob
from supagate.ops.cron import BUILTIN_JOBS
from supagate.ops.schedule import preview

EVALUATE_JOB, HEARTBEAT_JOB, RETENTION_JOB = BUILTIN_JOBS


def builtin_jobs(has_rules: bool, retention_days: int | bool) -> dict[str, dict[str, str]]:
    """supagate's own jobs: evaluation and heartbeat every minute when there are rules, and
    the daily purge of pg_cron's run history (it is never cleaned otherwise)."""
    jobs = {}
    if has_rules:
        jobs[EVALUATE_JOB] = {"schedule": "* * * * *", "command": "select count(*) from ops.evaluate_alerts()"}
        jobs[HEARTBEAT_JOB] = {"schedule": "* * * * *", "command": "select ops.beat('pg_cron')"}
    if retention_days is not False:
        # Plain SQL, so retention needs nothing but pg_cron itself.
        jobs[RETENTION_JOB] = {"schedule": "17 3 * * *",
                               "command": "delete from cron.job_run_details where end_time < now() - "
                                          f"interval '{int(retention_days)} days'"}
    return jobs


@dataclass
class OperationsArgs:
    db_url: pulumi.Input[str]  # a Pulumi secret
    rules: list[dict[str, Any]]  # canonical (supagate/ops/kinds.py)
    channels: dict[str, dict[str, Any]]  # name -> {type, secret, sign_with, labels}
    jobs: dict[str, dict[str, Any]]  # name -> {schedule, command, active}
    display_timezone: str = ""
    tier: str = "development"
    depends_on: list[pulumi.Resource] = field(default_factory=list)


class Operations(pulumi.ComponentResource):
    def __init__(self, name: str, args: OperationsArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("supabase-platform:operations:Operations", name, None, opts)
        url = pulumi.Output.secret(args.db_url)
        child = pulumi.ResourceOptions(parent=self, depends_on=args.depends_on)
        self.channels = {
            channel: AlertChannel(f"{name}-channel-{channel}", {"db_url": url, "name": channel, **spec}, child)
            for channel, spec in args.channels.items()}
        rule_opts = pulumi.ResourceOptions(parent=self, depends_on=[*args.depends_on, *self.channels.values()])
        self.rules = {
            rule["name"]: AlertRule(f"{name}-rule-{rule['name']}",
                                    {"db_url": url, "name": rule["name"], "rule": rule, "tier": args.tier}, rule_opts)
            for rule in args.rules}
        self.jobs = {
            job: CronJob(f"{name}-job-{job}", {"db_url": url, "name": job, "active": True, **spec,
                                               "display_timezone": args.display_timezone,
                                               # schedules run in UTC: the preview says when that is locally
                                               "next_runs": preview(spec["schedule"], args.display_timezone)}, child)
            for job, spec in args.jobs.items()}
        self.register_outputs({"jobs": {job: resource.jobid for job, resource in self.jobs.items()},
                               "rules": sorted(self.rules)})


def operations_args(settings, migrations) -> dict[str, Any] | None:
    """What the Operations component manages for these settings, or None when the stack uses
    neither alerts nor pg_cron. Raises SettingsError when the ops schema the rules and job
    wrappers need is missing from the migrations."""
    from supagate.config.loading import SettingsError
    from supagate.ops.cron import command, migration_jobs

    rules = settings.alert_rules()
    declared = {name: {"schedule": job.schedule, "command": command(name, job), "active": job.active}
                for name, job in settings.maintenance.jobs.items()}
    uses_cron = bool(rules or declared or migration_jobs([m.sql for m in migrations]))
    if not uses_cron:
        return None
    needs_ops = bool(rules) or any("ops.run_job" in job["command"] for job in declared.values())
    if needs_ops and not any("create function ops.version()" in m.sql for m in migrations):
        raise SettingsError(f"Pulumi.{settings.stack}.yaml declares alert rules or maintenance jobs, which need the "
                            f"ops schema, and no migration in {settings.migrations.directory} creates it.\n"
                            "Run `supagate ops init` (it writes that migration), review it, and deploy it with the "
                            "others; nothing was deployed.")
    jobs = {**builtin_jobs(bool(rules), settings.maintenance.history_retention_days), **declared}
    channels = {name: {"type": c.type, "secret": c.secret, "sign_with": c.sign_with, "labels": list(c.labels)}
                for name, c in settings.alerts.channels.items()}
    return {"rules": rules, "channels": channels, "jobs": jobs, "tier": settings.tier,
            "display_timezone": settings.maintenance.display_timezone}
