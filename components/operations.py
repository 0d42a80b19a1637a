"""Operations as resources: alert channels and rules evaluated by pg_cron inside the
database, and the maintenance jobs (the stack's own and supagate's: alert evaluation, the
scheduler heartbeat, pg_cron history retention)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pulumi

from components.providers.alerting import AlertChannel, AlertRule
from components.providers.cron_job import CronJob
from components.providers.feature_flag import FeatureFlag
from components.providers.rate_limit import RateLimitPolicy
from components.providers.seed import DatabaseEnvironment, Seed
from supagate.ops.schedule import preview


@dataclass
class OperationsArgs:
    db_url: pulumi.Input[str]  # a Pulumi secret
    rules: list[dict[str, Any]]  # canonical (supagate/ops/kinds.py)
    channels: dict[str, dict[str, Any]]  # name -> {type, secret, sign_with, labels}
    jobs: dict[str, dict[str, Any]]  # name -> {schedule, command, active}
    flags: list[dict[str, Any]] = field(default_factory=list)  # canonical (supagate/ops/flags.py)
    project_ref: str = ""
    seeds: list[dict[str, Any]] = field(default_factory=list)  # [{path, sql, hash}], below production only
    rate_limits: dict[str, dict[str, Any]] = field(default_factory=dict)  # function -> {max_requests, ...}
    display_timezone: str = ""
    tier: str = "development"
    depends_on: list[pulumi.Resource] = field(default_factory=list)


class Operations(pulumi.ComponentResource):
    def __init__(self, name: str, args: OperationsArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("supabase-platform:operations:Operations", name, None, opts)
        url = pulumi.Output.secret(args.db_url)
        child = pulumi.ResourceOptions(parent=self, depends_on=args.depends_on)
        # The database's own record of what it is: seeds ask it before they run.
        self.environment = DatabaseEnvironment(f"{name}-environment", {
            "db_url": url, "name": "environment", "tier": args.tier, "project_ref": args.project_ref}, child)
        self.rate_limits = {
            fn: RateLimitPolicy(f"{name}-rate-limit-{fn}", {"db_url": url, "name": fn, "tier": args.tier, **spec}, child)
            for fn, spec in args.rate_limits.items()}
        if args.seeds:
            Seed(f"{name}-seed", {"db_url": url, "name": "seed", "tier": args.tier, "files": args.seeds},
                 pulumi.ResourceOptions(parent=self, depends_on=[*args.depends_on, self.environment]))
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
        # Flags after the rules: their guards are rules.
        self.flags = {
            flag["key"]: FeatureFlag(f"{name}-flag-{flag['key']}",
                                     {"db_url": url, "name": flag["key"], "flag": flag, "tier": args.tier},
                                     pulumi.ResourceOptions(parent=self, depends_on=[*args.depends_on,
                                                                                     *self.rules.values()]))
            for flag in args.flags}
        self.flag_rollouts = {key: {"step": f.step, "enteredAt": f.step_entered_at} for key, f in self.flags.items()}
        self.register_outputs({"jobs": {job: resource.jobid for job, resource in self.jobs.items()},
                               "rules": sorted(self.rules), "flags": self.flag_rollouts})


def operations_args(settings, migrations, function_slugs: set[str] | None = None) -> dict[str, Any] | None:
    """What the Operations component manages for these settings, or None when the stack uses
    neither alerts nor pg_cron. Raises SettingsError when the ops schema the rules and job
    wrappers need is missing from the migrations."""
    from supagate.config.loading import SettingsError
    from supagate.ops.cron import migration_jobs, stack_jobs

    from supagate.ops.flags import canonical

    rules = settings.alert_rules()
    flags = [canonical(key, flag) for key, flag in settings.feature_flags.items()]
    has_ops = any("create function ops.version()" in m.sql for m in migrations)
    if not (has_ops or rules or flags or settings.maintenance.jobs or settings.seed.enabled or settings.rate_limits
            or migration_jobs([m.sql for m in migrations])):
        return None
    unknown = sorted(set(settings.rate_limits) - function_slugs) if function_slugs is not None else []
    if unknown:
        raise SettingsError(f"Pulumi.{settings.stack}.yaml: rateLimits.{unknown[0]} names no function in "
                            "supabase/functions; fix the name (a limit on nothing protects nothing).")
    jobs = stack_jobs(settings, rules)
    needs_ops = bool(rules or flags or settings.seed.enabled or settings.rate_limits) or any("ops.run_job" in job["command"]
                                                                      for job in jobs.values())
    if needs_ops and not has_ops:
        raise SettingsError(f"Pulumi.{settings.stack}.yaml declares alert rules, feature flags, seeds or maintenance jobs, "
                            f"which need the ops schema, and no migration in {settings.migrations.directory} creates it.\n"
                            "Run `supagate ops init` (it writes that migration), review it, and deploy it with the "
                            "others; nothing was deployed.")
    channels = {name: {"type": c.type, "secret": c.secret, "sign_with": c.sign_with, "labels": list(c.labels)}
                for name, c in settings.alerts.channels.items()}
    return {"rules": rules, "channels": channels, "jobs": jobs, "flags": flags, "tier": settings.tier,
            "project_ref": settings.project_ref, "seeds": seed_inputs(settings),
            "rate_limits": {fn: {"max_requests": r.limit, "window_seconds": r.window_seconds(), "key_by": r.key,
                                 "probe": r.probe} for fn, r in settings.rate_limits.items()},
            "display_timezone": settings.maintenance.display_timezone}


def seed_inputs(settings) -> list[dict[str, Any]]:
    """The stack's seed files, refused when this stack's project is another stack's production."""
    from pathlib import Path

    from supagate.config.loading import SettingsError
    from supagate.ops import seeds

    if not settings.seed.enabled or settings.is_production:
        return []
    production = seeds.production_refs(Path("."))
    if settings.project_ref in production:
        raise SettingsError(f"Pulumi.{settings.stack}.yaml enables seeds for project {settings.project_ref}, which "
                            f"{production[settings.project_ref]} deploys as production: seed data never runs there. "
                            "Fix projectRef (or dbUrl) of this stack; nothing was deployed.")
    return [{"path": f.path, "sql": f.sql, "hash": f.hash} for f in seeds.load(Path("."), settings.seed.paths)]
