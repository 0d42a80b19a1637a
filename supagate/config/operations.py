"""Stack settings for operations: `alerts` (channels, defaults, rules by kind) and
`maintenance` (pg_cron jobs from templates, history retention, the preview's time zone).

Rules are checked and brought to their canonical form here (supagate/ops/kinds.py), so a
wrong key fails `pulumi preview` with its path before anything is registered.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from supagate.config.models_base import Model


# Kinds whose threshold a monitoring setting also gives, and the rule name they get.
SUGAR = {"overdueJobs": "overdue-jobs", "deadLetters": "dead-letters"}


# A GitHub Actions secret name: these names are written into `${{ secrets.NAME }}` in the
# generated workflows, so anything else (`X }}${{ secrets.PULUMI_ACCESS_TOKEN`) could hand the
# step another secret.
SECRET_NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"


class AlertChannel(Model):
    type: Literal["webhook", "slack", "githubIssue"]
    secret: str = Field("", pattern=SECRET_NAME + "|^$")  # name in alertSecrets holding the URL (webhook, slack)
    sign_with: str = Field("", pattern=SECRET_NAME + "|^$")  # name in alertSecrets holding the HMAC key (webhook)
    labels: tuple[str, ...] = ("alert",)

    @model_validator(mode="after")
    def _secret(self):
        if self.type in ("webhook", "slack") and not self.secret:
            raise ValueError(f"a {self.type} channel names the alertSecrets entry holding its URL (secret: NAME)")
        if self.type == "githubIssue" and (self.secret or self.sign_with):
            raise ValueError("a githubIssue channel uses the workflow's token; it takes no secret")
        return self


class AlertDefaults(Model):
    for_: str = Field("0s", alias="for")
    keep_firing_for: str = "0s"
    repeat_interval: str = "4h"
    severity: Literal["critical", "warning", "info"] = "warning"
    notify: tuple[str, ...] = ()


class AlertSettings(Model):
    channels: dict[str, AlertChannel] = {}
    defaults: AlertDefaults = AlertDefaults()
    rules: dict[str, dict[str, Any]] = {}

    def secret_names(self) -> list[str]:
        """The alertSecrets entries the channels use (URLs, HMAC keys), sorted."""
        return sorted({name for c in self.channels.values() for name in (c.secret, c.sign_with) if name})

    def canonical_rules(self, thresholds: dict[str, float] | None = None,
                        add: tuple[str, ...] = ()) -> list[dict[str, Any]]:
        """Every rule in canonical form. `thresholds` (kind -> value: the monitoring settings)
        is the threshold of a rule of that kind that sets none; the kinds in `add` (those the
        stack set a monitoring threshold for) get a rule when the stack declares channels
        but no rule of that kind."""
        from supagate.ops.kinds import KINDS, canonical

        defaults = self.defaults.model_dump(by_alias=True)
        thresholds = thresholds or {kind: 0 for kind in SUGAR}
        rules = []
        for name, spec in self.rules.items():
            kind = KINDS.get(spec.get("kind"))
            if spec.get("kind") in thresholds and kind and kind.threshold_key not in spec:
                spec = {**spec, kind.threshold_key: thresholds[spec["kind"]]}
            rules.append(canonical(name, spec, defaults))
        kinds = {r["kind"] for r in rules}
        for kind, value in thresholds.items():
            if kind in add and self.channels and kind not in kinds and SUGAR[kind] not in self.rules:
                rules.append(canonical(SUGAR[kind], {"kind": kind, "above": value}, defaults))
        return rules

    @model_validator(mode="after")
    def _rules(self):
        from supagate.ops.kinds import MAX_SQL_RULES_SECONDS, interval_seconds

        problems = []
        rules = self.canonical_rules()
        for rule in rules:
            unknown = [c for c in rule["notify"] if c not in self.channels]
            if unknown:
                problems.append(f"alerts.rules.{rule['name']}.notify names {unknown[0]!r}, which is not a channel "
                                f"(declared: {', '.join(sorted(self.channels)) or 'none'})")
        budget = sum(interval_seconds(r["params"]["timeout"]) for r in rules if r["kind"] == "sql")
        if budget > MAX_SQL_RULES_SECONDS:
            problems.append(f"alerts.rules: the sql rules' timeouts add up to {budget:g}s, and one evaluation runs "
                            f"every minute; keep them at {MAX_SQL_RULES_SECONDS}s in all (lower `timeout`)")
        if problems:
            raise ValueError("; ".join(problems))
        return self


class CronJob(Model):
    schedule: str
    vacuum_analyze: str = ""
    refresh: str = ""
    call: str = ""
    sql: str = ""
    timeout: str = ""
    active: bool = True

    @model_validator(mode="after")
    def _one_template(self):
        chosen = [k for k in ("vacuum_analyze", "refresh", "call", "sql") if getattr(self, k)]
        if len(chosen) != 1:
            raise ValueError("a job has exactly one of vacuumAnalyze, refresh, call, sql "
                             f"(found {', '.join(chosen) or 'none'})")
        for key in ("vacuum_analyze", "refresh", "call"):
            value = getattr(self, key)
            if value and not re.match(r"^[a-z_][a-z0-9_$]*\.[a-z_][a-z0-9_$]*\Z", value):
                raise ValueError(f"{key}: {value!r} is not schema.name (schema-qualified, lower case)")
        return self


class MaintenanceSettings(Model):
    history_retention_days: int | Literal[False] = Field(14)
    display_timezone: str = ""
    pg_cron_version: str = Field("1.6", pattern=r"^\d+\.\d+(\.\d+)?$")
    jobs: dict[str, CronJob] = {}

    @field_validator("history_retention_days")
    @classmethod
    def _days(cls, value):
        if value is not False and not 1 <= value <= 3650:
            raise ValueError("historyRetentionDays is 1-3650 days, or false to keep pg_cron's history forever")
        return value

    @field_validator("display_timezone")
    @classmethod
    def _zone(cls, value):
        if value:
            from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

            try:
                ZoneInfo(value)
            except (ZoneInfoNotFoundError, ValueError):
                raise ValueError(f"{value!r} is not an IANA time zone (e.g. Europe/Berlin)") from None
        return value

    @field_validator("jobs")
    @classmethod
    def _jobs(cls, value):
        from supagate.ops.cron import job_problems

        problems = [p for name, job in value.items() for p in job_problems(name, job)]
        if problems:
            raise ValueError("; ".join(problems))
        return value

    @model_validator(mode="after")
    def _schedules(self):
        from supagate.ops.schedule import parse

        version = tuple(int(p) for p in self.pg_cron_version.split("."))
        for name, job in self.jobs.items():
            try:
                parse(job.schedule, version)
            except ValueError as exc:
                raise ValueError(f"maintenance.jobs.{name}.schedule: {exc}") from None
        return self
