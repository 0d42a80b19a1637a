"""The pack's checks of alert rules, alert channels and pg_cron jobs, as plain functions of
resource inputs (the contract of checks.py: Findings that violate; an input the check
cannot read is a violation, never a pass)."""

from __future__ import annotations

import re
from typing import Any, Iterable

from supagate.findings import Finding
from supagate.offline.resource_types import (ALERT_CHANNEL, ALERT_RULE, CRON_JOB, EDGE_FUNCTION, FEATURE_FLAG,
                                             MIGRATIONS, RATE_LIMIT_POLICY)
from supagate.pack.checks import _unreadable, _violation, plain

# What a production stack must watch (the deployment guides' checklist items).
REQUIRED_KINDS = ("overdueJobs", "deadLetters", "connectionSaturation", "cronFailures", "schedulerHeartbeat")


def _rule(props: dict[str, Any]) -> dict[str, Any] | None:
    rule = plain(props.get("rule"))
    return rule if isinstance(rule, dict) and isinstance(rule.get("name"), str) else None


def alert_sql_violations(props: dict[str, Any]) -> list[Finding]:
    from supagate.ops.readonly import read_only_problem

    rule = _rule(props)
    if rule is None:
        return [_unreadable("alerts-sql", str(props.get("name")), "the alert rule", props.get("rule"),
                            "Declare the rule under alerts.rules in the stack file.")]
    if rule.get("kind") != "sql":
        return []
    query = (rule.get("params") or {}).get("query") if isinstance(rule.get("params"), dict) else None
    problem = read_only_problem(query) if isinstance(query, str) else "the query is missing"
    if problem is None:
        return []
    return [_violation("alerts-sql", rule["name"], f"Alert rule {rule['name']} runs SQL that is not one read-only "
                       f"SELECT: {problem}. It would run every minute as the database owner.",
                       "Rewrite it as a single SELECT returning one number; put writes in a maintenance job.")]


def alert_channel_violations(resources: Iterable[tuple[str, dict[str, Any]]], paging: bool) -> list[Finding]:
    """Every rule notifies at least one declared channel; with `paging`, a critical rule on
    a production tier also notifies one that is not a GitHub issue (nobody is paged by an
    issue at 3 a.m.)."""
    resources = list(resources)
    channels = {plain(p.get("name")): plain(p.get("type")) for t, p in resources if t == ALERT_CHANNEL}
    found = []
    for type_, props in resources:
        if type_ != ALERT_RULE:
            continue
        rule = _rule(props)
        if rule is None:
            found.append(_unreadable("alerts-channel", str(props.get("name")), "the alert rule", props.get("rule"),
                                     "Declare the rule under alerts.rules in the stack file."))
            continue
        notify = rule.get("notify") if isinstance(rule.get("notify"), list) else []
        known = [c for c in notify if c in channels]
        if not paging and not known:
            found.append(_violation("alerts-channel", rule["name"], f"Alert rule {rule['name']} notifies no declared "
                                    f"channel ({', '.join(map(str, notify)) or 'notify is empty'}): it would fire "
                                    "unheard.", "Name a channel from alerts.channels in its notify (or in "
                                                "alerts.defaults.notify)."))
        if paging and props.get("tier") == "production" and rule.get("severity") == "critical" and \
                not any(channels[c] != "githubIssue" for c in known):
            found.append(_violation("alerts-paging", rule["name"], f"Critical alert rule {rule['name']} on a "
                                    "production stack only opens GitHub issues; nobody is paged.",
                                    "Add a webhook or slack channel to its notify."))
    return found


def alert_coverage_violations(resources: Iterable[tuple[str, dict[str, Any]]], required: Iterable[str]) -> list[Finding]:
    resources = list(resources)
    if not any(t == MIGRATIONS for t, _ in resources):
        return []  # not an app stack
    kinds = {(_rule(p) or {}).get("kind") for t, p in resources if t == ALERT_RULE}
    missing = [k for k in required if k not in kinds]
    if not missing:
        return []
    return [_violation("alerts-coverage", "(stack)", f"The stack has no alert rule of kind {', '.join(missing)}: "
                       "a production deploy must watch them.", "Add rules of those kinds under alerts.rules.")]


def cron_job_violations(props: dict[str, Any]) -> list[Finding]:
    from supagate.ops.readonly import statement_count
    from supagate.ops.schedule import parse

    name, schedule, command = (plain(props.get(k)) for k in ("name", "schedule", "command"))
    if not isinstance(schedule, str) or not isinstance(command, str):
        return [_unreadable("cron", str(name), f"the schedule or command of job {name}", schedule,
                            "Declare the job under maintenance.jobs.")]
    found = []
    try:
        parse(schedule)
    except ValueError as exc:
        found.append(_violation("cron-schedule", str(name), f"Job {name}: {exc}.", "Fix the schedule (UTC)."))
    if re.search(r"\b(vacuum|concurrently)\b", command, re.I):
        try:
            count = statement_count(command)
        except ValueError as exc:
            count = None
            found.append(_violation("cron-statement", str(name), f"Job {name}'s command {exc}.", "Fix the SQL."))
        if count is not None and count != 1:
            found.append(_violation("cron-statement", str(name), f"Job {name} runs VACUUM or a CONCURRENTLY command "
                                    f"among {count} statements; pg_cron runs them as one transaction, which those "
                                    "commands refuse.", "Give the command a job of its own."))
    return found


def cron_retention_violations(resources: Iterable[tuple[str, dict[str, Any]]]) -> list[Finding]:
    jobs = [p for t, p in resources if t == CRON_JOB]
    if not jobs or any("cron.job_run_details" in str(plain(p.get("command"))) and
                       "delete" in str(plain(p.get("command"))).lower() for p in jobs):
        return []
    return [_violation("cron-retention", "(stack)", "The stack schedules pg_cron jobs and nothing purges "
                       "cron.job_run_details, which pg_cron never cleans (one row per run, forever).",
                       "Keep maintenance.historyRetentionDays (default 14) instead of false.")]


def _flag(props: dict[str, Any]) -> dict[str, Any] | None:
    flag = plain(props.get("flag"))
    return flag if isinstance(flag, dict) and isinstance(flag.get("key"), str) else None


def flag_safety_violations(props: dict[str, Any]) -> list[Finding]:
    """A safety flag is on for everyone: enabled, not paused, one step at 100%, audience everyone."""
    flag = _flag(props)
    if flag is None:
        return [_unreadable("flags-safety", str(props.get("name")), "the feature flag", props.get("flag"),
                            "Declare the flag under featureFlags in the stack file.")]
    if flag.get("kind") != "safety":
        return []
    steps = flag.get("steps") if isinstance(flag.get("steps"), list) else None
    wrong = [what for what, bad in (("disabled", flag.get("enabled") is not True), ("paused", flag.get("paused") is not False),
                                    ("rolled out partially", steps != [10000] or flag.get("step") != 0),
                                    (f"limited to {flag.get('audience')}", flag.get("audience") != "everyone"))
             if bad]
    if not wrong:
        return []
    return [_violation("flags-safety", flag["key"], f"Safety flag {flag['key']} is {', '.join(wrong)}: safety "
                       "features stay on for everyone.", "Keep the flag as `kind: safety` with no other keys.")]


def flag_plan_violations(props: dict[str, Any], minimum_soak_seconds: float) -> list[Finding]:
    from supagate.ops.flags import plan_problems
    from supagate.ops.kinds import interval_seconds

    flag = _flag(props)
    if flag is None:
        return [_unreadable("flags-plan", str(props.get("name")), "the feature flag", props.get("flag"),
                            "Declare the flag under featureFlags in the stack file.")]
    steps = flag.get("steps")
    if not isinstance(steps, list) or not all(isinstance(x, int) for x in steps):
        return [_unreadable("flags-plan", flag["key"], f"the plan of flag {flag['key']}", steps,
                            "Give the flag a preset plan or a list of steps.")]
    if len(steps) < 2:
        return []  # a plan-less flag: one step
    found = [_violation("flags-plan", flag["key"], problem.split(": ", 1)[1] + f" (flag {flag['key']}).",
                        "Use a preset (internal-10-50-100, canary-5-25-50-100) or fix the steps.")
             for problem in plan_problems(flag["key"], steps)]
    try:
        soak = interval_seconds(flag.get("soak", "0 seconds"))
    except ValueError:
        soak = -1
    if soak < minimum_soak_seconds:
        found.append(_violation("flags-plan", flag["key"], f"Flag {flag['key']} soaks {flag.get('soak')} per step, "
                                f"under this stack's minimum of {minimum_soak_seconds:g} seconds.",
                                "Raise its soak (e.g. soak: 24h)."))
    return found


def flag_guard_violations(resources: Iterable[tuple[str, dict[str, Any]]]) -> list[Finding]:
    resources = list(resources)
    rules = {(_rule(p) or {}).get("name") for t, p in resources if t == ALERT_RULE}
    found = []
    for type_, props in resources:
        flag = _flag(props) if type_ == FEATURE_FLAG else None
        if flag is None:
            continue
        missing = [g for g in flag.get("guards") or [] if g not in rules]
        if missing:
            found.append(_violation("flags-guards", flag["key"], f"Flag {flag['key']} is guarded by "
                                    f"{', '.join(missing)}, which no alert rule of this stack is: its rollout "
                                    "would advance unwatched.", "Name rules declared under alerts.rules."))
    return found


def rate_limit_probe_violations(resources: Iterable[tuple[str, dict[str, Any]]]) -> list[Finding]:
    resources = list(resources)
    probed = {plain(p.get("name")) for t, p in resources if t == RATE_LIMIT_POLICY and plain(p.get("probe")) is True}
    found = []
    for type_, props in resources:
        if type_ == EDGE_FUNCTION and plain(props.get("verify_jwt")) is not True:
            slug = plain(props.get("slug"))
            if slug not in probed:
                found.append(_violation("ratelimits-probe", str(slug), f"Function {slug} accepts requests without a "
                                        "JWT and has no probed rate limit: nothing proves a flood is refused.",
                                        f"Declare rateLimits.{slug}: {{limit: N, window: 1m, probe: true}}."))
    return found
