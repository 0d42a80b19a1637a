"""The alert rule kinds: what each reads, its threshold, and its canonical form.

A rule in the stack file is `{kind, <threshold key>: N, window..., for, ...}`; `canonical`
turns it into the one shape every evaluator takes (the `ops.alert_rules` row, the
AlertRule resource's inputs, `supagate alerts evaluate`): name, kind, params, threshold,
comparison, for_interval, keep_firing_for, repeat_interval, severity, notify. Durations
become Postgres intervals ("900 seconds"), so two spellings of one rule compare equal and
a preview shows a semantic diff, never a reformatting.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

# Schemas a row-counting rule (overdueJobs, deadLetters, tableGrowth) may not name.
PRIVATE_SCHEMAS = {"auth", "vault", "pgsodium", "ops", "cron", "net", "storage", "extensions", "pg_catalog",
                   "information_schema", "supabase_functions", "supabase_migrations", "realtime", "graphql"}
_DURATION = re.compile(r"^(\d+)(ms|s|m|min|h|d|w)\Z")
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "min": 60, "h": 3600, "d": 86400, "w": 604800}


def seconds(text: Any, key: str) -> float:
    """'15m' -> 900.0; names the key in the error."""
    match = _DURATION.match(str(text).strip()) if isinstance(text, (str, int)) else None
    if isinstance(text, int) and not isinstance(text, bool):
        return float(text)
    if not match:
        raise ValueError(f"{key}: {text!r} is not a duration (use e.g. 30s, 15m, 1h, 7d)")
    return int(match.group(1)) * _UNIT_SECONDS[match.group(2)]


def interval(text: Any, key: str) -> str:
    value = seconds(text, key)
    return f"{int(value) if value == int(value) else value} seconds"


def interval_seconds(text: Any) -> float:
    """The canonical form back: '900 seconds' -> 900.0; ValueError for anything else."""
    match = re.fullmatch(r"(\d+(?:\.\d+)?) seconds", str(text))
    if not match:
        raise ValueError(f"{text!r} is not an interval in canonical form ('N seconds')")
    return float(match.group(1))


@dataclass(frozen=True)
class Kind:
    name: str
    threshold_key: str  # the key that holds the threshold in the stack file
    reads: str  # what the kind measures, for the docs and `supagate alerts evaluate`
    comparison: str = "above"
    default_threshold: float | None = None
    duration_threshold: bool = False  # the threshold is a duration (seconds in the database)
    params: dict[str, Any] = field(default_factory=dict)  # parameter -> default (None: required)
    durations: tuple[str, ...] = ()  # parameters that are durations
    promql: str | None = None  # a Metrics API expression, for `alerts render --prometheus`


KINDS = {k.name: k for k in (
    Kind("overdueJobs", "above", "pending rows of the job table due more than `grace` ago",
         params={"table": "public.background_jobs", "statusColumn": "status", "pendingValue": "pending",
                 "dueColumn": "run_at", "grace": "15m"}, durations=("grace",)),
    Kind("deadLetters", "above", "rows of the dead-letter table that failed within `window`",
         params={"table": "public.background_jobs_dlq", "timeColumn": "failed_at", "window": "24h"},
         durations=("window",)),
    Kind("slowQueries", "meanMs", "the worst mean time (ms) of a statement called at least `minCalls` times "
         "within `window` (pg_stat_statements samples)", params={"minCalls": 50, "window": "15m"},
         durations=("window",)),
    Kind("avgQueryTime", "ms", "mean statement time (ms) over `window` (pg_stat_statements samples)",
         params={"window": "15m"}, durations=("window",),
         promql="(sum(rate(pg_stat_statements_total_time_seconds[{window}])) / "
                "sum(rate(pg_stat_statements_total_queries[{window}]))) * 1000 > {threshold}"),
    Kind("connectionSaturation", "percent", "client connections as a percentage of max_connections "
         "(pg_stat_activity)", default_threshold=80,
         promql="100 * sum(pg_stat_database_num_backends) / max(max_connections_connection_count) > {threshold}"),
    Kind("sessionsFatal", "above", "sessions ended by a FATAL error within `window` "
         "(pg_stat_database.sessions_fatal)", default_threshold=0, params={"window": "15m"}, durations=("window",)),
    Kind("rollbackRatio", "percent", "rolled-back transactions as a percentage of all within `window` "
         "(pg_stat_database), once at least `minTransactions` ran", params={"window": "15m", "minTransactions": 20},
         durations=("window",),
         promql="100 * sum(rate(pg_stat_database_xact_rollback_total[{window}])) / "
                "(sum(rate(pg_stat_database_xact_rollback_total[{window}])) + "
                "sum(rate(pg_stat_database_xact_commit_total[{window}]))) > {threshold}"),
    Kind("cronFailures", "above", "failed runs in cron.job_run_details within `window` (all jobs, or `job`)",
         default_threshold=0, params={"window": "1h", "job": ""}, durations=("window",)),
    Kind("cronMissed", "maxAge", "time since the job's last successful run (cron.job_run_details)",
         duration_threshold=True, params={"job": None}),
    Kind("schedulerHeartbeat", "maxAge", "time since pg_cron last ran both the heartbeat and a complete alert "
         "evaluation (the older of the two; the heartbeat job evaluates this kind)",
         default_threshold=180, duration_threshold=True),
    Kind("externalWatch", "maxAge", "time since the health workflow last checked in (ops.check_in)",
         default_threshold=1800, duration_threshold=True),
    Kind("tableGrowth", "percent", "growth of the table's total size within `window`",
         params={"table": None, "window": "24h"}, durations=("window",)),
    Kind("unusedIndexes", "above", "non-unique indexes of at least `minSizeMb` never scanned since the "
         "statistics were reset", default_threshold=0, params={"minSizeMb": 10}),
    Kind("safetyFlags", "above", "safety flags not on for everyone (a superuser can bypass the guard trigger "
         "with session_replication_role = replica)", default_threshold=0),
    Kind("sql", "above", "the number one SELECT returns, run as supagate_alert_reader in a read-only transaction "
         "under its own `timeout`", params={"query": None, "timeout": "5s"}, durations=("timeout",)),
)}

RULE_KEYS = {"kind", "for", "keepFiringFor", "repeatInterval", "severity", "notify", "below"}
MAX_SQL_RULE_SECONDS = 30  # a sql rule's own statement timeout, at most
MAX_SQL_RULES_SECONDS = 40  # all of them: the evaluation runs every minute, the other kinds too


def canonical(name: str, spec: dict[str, Any], defaults: dict[str, Any]) -> dict[str, Any]:
    """The rule `name` of the stack file in its canonical form; ValueError names the key."""
    where = f"alerts.rules.{name}"
    if not re.match(r"^[a-z0-9][a-z0-9-]*\Z", name):
        raise ValueError(f"{where}: rule names are lower-case letters, digits and dashes")
    kind = KINDS.get(spec.get("kind"))
    if kind is None:
        raise ValueError(f"{where}.kind: {spec.get('kind')!r} is not a kind (one of {', '.join(sorted(KINDS))})")
    allowed = RULE_KEYS | {kind.threshold_key} | set(kind.params)
    unknown = sorted(set(spec) - allowed)
    if unknown:
        raise ValueError(f"{where}: unknown key {unknown[0]!r} for kind {kind.name} "
                         f"(allowed: {', '.join(sorted(allowed))})")
    comparison = kind.comparison
    raw = spec.get(kind.threshold_key, kind.default_threshold)
    if kind.name == "sql" and "below" in spec:
        comparison, raw = "below", spec["below"]
    elif "below" in spec:
        raise ValueError(f"{where}.below: only sql rules compare below a threshold")
    if raw is None:
        raise ValueError(f"{where}: set {kind.threshold_key} (the threshold of a {kind.name} rule)")
    if kind.duration_threshold:
        threshold = seconds(raw, f"{where}.{kind.threshold_key}")
    elif isinstance(raw, (int, float)) and not isinstance(raw, bool):
        threshold = float(raw)
    else:
        raise ValueError(f"{where}.{kind.threshold_key}: {raw!r} is not a number")
    params: dict[str, Any] = {}
    for key, default in kind.params.items():
        value = spec.get(key, default)
        if value is None:
            raise ValueError(f"{where}.{key}: required for a {kind.name} rule")
        if value == "":
            continue
        if key == "table" and not re.match(r"^[a-z_][a-z0-9_$]*\.[a-z_][a-z0-9_$]*\Z", str(value)):
            raise ValueError(f"{where}.table: {value!r} is not schema.table (qualified, lower case)")
        if key == "table" and str(value).split(".")[0] in PRIVATE_SCHEMAS:
            # These kinds count rows as the evaluator, not behind the sql rules' boundary: a
            # rule on auth.users with a chosen status value answers "does this e-mail exist".
            raise ValueError(f"{where}.table: {value!r} is in {str(value).split('.')[0]}, which a rule may not "
                             "count; watch an app table (a job queue, an event log)")
        params[key] = interval(value, f"{where}.{key}") if key in kind.durations else value
    if kind.name == "sql":
        from supagate.ops.readonly import read_only_problem

        problem = read_only_problem(params["query"])
        if problem:
            raise ValueError(f"{where}.query: {problem}")
        if not 0 < interval_seconds(params["timeout"]) <= MAX_SQL_RULE_SECONDS:
            raise ValueError(f"{where}.timeout: {spec.get('timeout')!r} is not between 1ms and "
                             f"{MAX_SQL_RULE_SECONDS}s (the evaluation runs every minute)")
    merged = {**defaults, **{k: v for k, v in spec.items() if k in RULE_KEYS}}
    severity = merged.get("severity", "warning")
    if severity not in ("critical", "warning", "info"):
        raise ValueError(f"{where}.severity: {severity!r} is not critical, warning or info")
    notify = merged.get("notify", [])
    if isinstance(notify, str) or not all(isinstance(n, str) for n in notify):
        raise ValueError(f"{where}.notify: a list of channel names")
    return {"name": name, "kind": kind.name, "params": params, "threshold": threshold, "comparison": comparison,
            "for_interval": interval(merged.get("for", "0s"), f"{where}.for"),
            "keep_firing_for": interval(merged.get("keepFiringFor", "0s"), f"{where}.keepFiringFor"),
            "repeat_interval": interval(merged.get("repeatInterval", "4h"), f"{where}.repeatInterval"),
            "severity": severity, "notify": list(notify)}


def promql(rule: dict[str, Any]) -> str | None:
    """The rule as a Metrics API (Prometheus) expression, or None when the Metrics API has
    no series for its kind."""
    kind = KINDS[rule["kind"]]
    if kind.promql is None:
        return None
    window = rule["params"].get("window", "900 seconds")
    return kind.promql.format(window=f"{int(interval_seconds(window))}s", threshold=_number(rule["threshold"]))


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)
