"""Pre-deploy checks on prod, run by the migrations provider before it applies anything:
no transaction older than a limit (a migration would queue behind it and block every
reader), connections under a share of max_connections, and a backup or PITR point no
older than a limit (through the Management API when a token is configured). Each failing
check is a Finding naming the check, and the run stops before anything changes; a check
that cannot read what it needs fails.
"""

from __future__ import annotations

from supagate.errors import Failed

import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg

from supagate.postgres.connect import connect
from supagate.findings import MANDATORY, Finding
from supagate.supabase_api.client import ApiError, from_inputs


class PreflightError(Failed):
    pass


@dataclass(frozen=True)
class Limits:
    max_transaction_age_seconds: int = 300
    max_connections_percent: int = 80
    max_backup_age_hours: int = 24
    require_pitr: bool = False  # backups.pitrEnabled: the stack counts on point-in-time recovery


def pre_deploy_findings(url: str, limits: Limits, api_inputs: dict[str, Any] | None = None,
                        now: float | None = None) -> list[Finding]:
    """The failing checks; empty when every check passes."""
    failures: list[Finding] = []
    with connect(url) as conn:
        failures += _transactions(conn, limits.max_transaction_age_seconds)
        failures += _connections(conn, limits.max_connections_percent)
    if api_inputs and api_inputs.get("access_token"):
        failures += _backups(api_inputs, limits.max_backup_age_hours, now or time.time(), limits.require_pitr)
    return failures


def require(url: str, limits: Limits, api_inputs: dict[str, Any] | None = None) -> None:
    failures = pre_deploy_findings(url, limits, api_inputs)
    if failures:
        raise PreflightError("failed the pre-deploy checks; nothing was changed:\n  "
                             + "\n  ".join(f"{f.rule}: {f.message}" for f in failures)
                             + "\nFix the cause (or wait), then run `pulumi up` again.")


def _transactions(conn: psycopg.Connection, limit: int) -> list[Finding]:
    row = conn.execute(
        "SELECT pid, coalesce(nullif(application_name, ''), usename::text, '?'), "
        "       extract(epoch FROM now() - xact_start)::int "
        "FROM pg_stat_activity WHERE xact_start IS NOT NULL AND pid <> pg_backend_pid() "
        "AND backend_type = 'client backend' ORDER BY xact_start LIMIT 1").fetchone()
    if row and row[2] > limit:
        return [_failed("transaction-age", f"backend {row[0]} ({row[1]}) has had a transaction open for {row[2]} s, over "
                f"the {limit} s limit; migrations would wait behind its locks (end it: "
                f"select pg_terminate_backend({row[0]}))")]
    return []


def _connections(conn: psycopg.Connection, limit_percent: int) -> list[Finding]:
    used, most = conn.execute(
        "SELECT count(*), current_setting('max_connections')::int FROM pg_stat_activity "
        "WHERE backend_type = 'client backend'").fetchone()
    percent = 100 * used / most
    if percent > limit_percent:
        return [_failed("connections", f"{used} of {most} connections in use ({percent:.0f}%), over the {limit_percent}% "
                "limit; a deploy now could starve the app (check the pooler and long-running clients)")]
    return []


def _backups(api_inputs: dict[str, Any], max_age_hours: int, now: float, require_pitr: bool = False) -> list[Finding]:
    ref = api_inputs["project_ref"]
    try:
        with from_inputs(api_inputs) as api:
            backups = api.get(f"/v1/projects/{ref}/database/backups") or {}
    except ApiError as exc:
        return [_failed("backup", f"could not read the project's backups ({str(exc).splitlines()[0]})")]
    if require_pitr and backups.get("pitr_enabled") is not True:
        # A declared recovery plan that does not exist is worse than none: say so before migrating.
        return [_failed("backup", f"the stack declares backups.pitrEnabled but project {ref} has no point-in-time "
                        "recovery; enable the PITR add-on (Project Settings > Add-ons) or set pitrEnabled: false")]
    newest = None
    if backups.get("pitr_enabled"):
        newest = (backups.get("physical_backup_data") or {}).get("latest_physical_backup_date_unix")
    for backup in backups.get("backups") or []:
        if backup.get("status") == "COMPLETED" and backup.get("inserted_at"):
            stamp = _unix(backup["inserted_at"])
            if stamp is not None and (newest is None or stamp > newest):
                newest = stamp
    if newest is None:
        return [_failed("backup", f"project {ref} has no completed backup or PITR point; take one before migrating "
                "(Database > Backups)")]
    age_hours = (now - newest) / 3600
    if age_hours > max_age_hours:
        return [_failed("backup", f"the newest backup of project {ref} is {age_hours:.0f} h old, over the {max_age_hours} h "
                "limit; take one before migrating (Database > Backups)")]
    return []


def _failed(check: str, message: str) -> Finding:
    return Finding(check, check, message, enforcement=MANDATORY, source="preflight")


def _unix(text: str) -> float | None:
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None
