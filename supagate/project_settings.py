"""Project settings through the Management API, one area per endpoint.

Only what the stack declares is managed: the desired state holds the keys the stack file
sets, diff and read compare only those, and an update sends only those. Nothing
undeclared is read into the state or sent. Deleting the resource leaves the project as it
is. Postgres parameters that restart the database are named in the diff and refused
unless `allowRestart` is true.
"""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING, Any, Callable

from .management_api import ManagementApi

if TYPE_CHECKING:
    from .settings import Settings

# The keys of the API's UpdatePostgresConfigBody (checked against the vendored spec in the
# tests), with the type each takes on the wire.
POSTGRES_PARAMETERS: dict[str, type] = {
    "effective_cache_size": str, "logical_decoding_work_mem": str, "maintenance_work_mem": str,
    "track_activity_query_size": str, "max_connections": int, "max_locks_per_transaction": int,
    "max_parallel_maintenance_workers": int, "max_parallel_workers": int, "max_parallel_workers_per_gather": int,
    "max_replication_slots": int, "max_slot_wal_keep_size": str, "max_standby_archive_delay": str,
    "max_standby_streaming_delay": str, "max_wal_size": str, "max_wal_senders": int, "max_worker_processes": int,
    "session_replication_role": str, "shared_buffers": str, "statement_timeout": str,
    "track_commit_timestamp": bool, "wal_keep_size": str, "wal_sender_timeout": str, "work_mem": str,
    "checkpoint_timeout": str, "hot_standby_feedback": bool,
}
# Parameters of PostgreSQL's `postmaster` context: a new value needs a restart (checked
# against pg_settings of a real PostgreSQL 15 in the tests).
RESTART_PARAMETERS = frozenset({
    "max_connections", "max_locks_per_transaction", "max_replication_slots", "max_wal_senders",
    "max_worker_processes", "shared_buffers", "track_activity_query_size", "track_commit_timestamp",
})
PASSWORD_CHARACTERS = {
    "": "",
    "letters_digits": "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ:0123456789",
    "lower_upper_letters_digits": "abcdefghijklmnopqrstuvwxyz:ABCDEFGHIJKLMNOPQRSTUVWXYZ:0123456789",
    "lower_upper_letters_digits_symbols":
        "abcdefghijklmnopqrstuvwxyz:ABCDEFGHIJKLMNOPQRSTUVWXYZ:0123456789:!@#$%^&*()_+-=[]{};'\\\\:\"|<>?,./`~",
}
# Which services must be healthy before an area changes.
AREA_SERVICES = {"postgres": ["db"], "auth": ["auth"], "postgrest": ["rest"], "pooler": ["pooler"],
                 "network_restrictions": ["db"], "ssl_enforced": ["db"], "storage": ["storage"]}
AREAS = tuple(AREA_SERVICES)


class SettingsApplyError(RuntimeError):
    pass


# ---------------------------------------------------------------- desired state

def desired_state(settings: "Settings") -> dict[str, Any]:
    """The declared areas, in the API's own key names (only keys the stack file sets)."""
    declared = settings.model_fields_set
    state: dict[str, Any] = {}
    if "postgres" in declared and settings.postgres:
        state["postgres"] = {k: POSTGRES_PARAMETERS[k](v) if POSTGRES_PARAMETERS[k] is not bool else bool(v)
                             for k, v in settings.postgres.items()}
    if "auth" in declared:
        state["auth"] = _auth_body(settings)
    postgrest = {}
    if "exposed_schemas" in declared:
        postgrest["db_schema"] = ",".join(settings.exposed_schemas)
    if "max_rows" in declared:
        postgrest["max_rows"] = settings.max_rows
    if postgrest:
        state["postgrest"] = postgrest
    if "pooler" in declared and settings.pooler is not None:
        state["pooler"] = {api: getattr(settings.pooler, name) for name, api in
                           (("default_pool_size", "default_pool_size"), ("pool_mode", "pool_mode"))
                           if name in settings.pooler.model_fields_set}
    if "network_restrictions" in declared and settings.network_restrictions:  # [] = not managed
        v4 = sorted(c for c in settings.network_restrictions if ipaddress.ip_network(c).version == 4)
        v6 = sorted(c for c in settings.network_restrictions if ipaddress.ip_network(c).version == 6)
        state["network_restrictions"] = {"dbAllowedCidrs": v4, "dbAllowedCidrsV6": v6}
    if "ssl_enforced" in declared:
        state["ssl_enforced"] = settings.ssl_enforced
    if "storage" in declared and settings.storage is not None:
        storage: dict[str, Any] = {}
        if "file_size_limit" in settings.storage.model_fields_set:
            storage["fileSizeLimit"] = settings.storage.file_size_limit
        if "image_transformation" in settings.storage.model_fields_set:
            storage["imageTransformation"] = settings.storage.image_transformation
        state["storage"] = storage
    return {area: value for area, value in state.items() if value != {}}


def _auth_body(settings: "Settings") -> dict[str, Any]:
    auth, declared = settings.auth, settings.auth.model_fields_set
    mapping: dict[str, Callable[[], dict[str, Any]]] = {
        "site_url": lambda: {"site_url": auth.site_url},
        "redirect_urls": lambda: {"uri_allow_list": ",".join(auth.redirect_urls)},
        "jwt_expiry": lambda: {"jwt_exp": auth.jwt_expiry},
        "password_min_length": lambda: {"password_min_length": auth.password_min_length},
        "password_requirements": lambda: {"password_required_characters":
                                          PASSWORD_CHARACTERS[auth.password_requirements]},
        "mfa_totp": lambda: {"mfa_totp_enroll_enabled": auth.mfa_totp, "mfa_totp_verify_enabled": auth.mfa_totp},
        "signup_enabled": lambda: {"disable_signup": not auth.signup_enabled},
        "email_confirmations": lambda: {"mailer_autoconfirm": not auth.email_confirmations},
        "rate_limit_email_sent": lambda: {"rate_limit_email_sent": auth.rate_limit_email_sent},
    }
    body: dict[str, Any] = {}
    for name in sorted(declared):
        body.update(mapping[name]())
    return body


# ---------------------------------------------------------------- comparing

def changes(current: dict[str, Any], desired: dict[str, Any]) -> dict[str, dict[str, tuple[Any, Any]]]:
    """area -> {key: (current, desired)} for the declared keys whose values differ."""
    found: dict[str, dict[str, tuple[Any, Any]]] = {}
    for area, wanted in desired.items():
        have = current.get(area)
        if not isinstance(wanted, dict):
            if have != wanted:
                found[area] = {area: (have, wanted)}
            continue
        have = have if isinstance(have, dict) else {}
        differing = {k: (have.get(k), v) for k, v in wanted.items() if _normal(have.get(k)) != _normal(v)}
        if differing:
            found[area] = differing
    return found


def _normal(value: Any) -> Any:
    return sorted(value) if isinstance(value, list) else value


def restarts(found: dict[str, dict[str, tuple[Any, Any]]]) -> list[str]:
    return sorted(k for k in found.get("postgres", {}) if k in RESTART_PARAMETERS)


def describe(found: dict[str, dict[str, tuple[Any, Any]]]) -> list[str]:
    lines = []
    for area, keys in sorted(found.items()):
        for key, (old, new) in sorted(keys.items()):
            name = area if key == area else f"{area}.{key}"
            note = " (restarts the database)" if area == "postgres" and key in RESTART_PARAMETERS else ""
            lines.append(f"{name}: {old!r} -> {new!r}{note}")
    return lines


# ---------------------------------------------------------------- remote state

def read_current(api: ManagementApi, ref: str, desired: dict[str, Any]) -> dict[str, Any]:
    """The project's values for the declared keys only."""
    current: dict[str, Any] = {}
    base = f"/v1/projects/{ref}"
    for area, wanted in desired.items():
        if area == "postgres":
            current[area] = _pick(api.get(f"{base}/config/database/postgres"), wanted)
        elif area == "auth":
            current[area] = _pick(api.get(f"{base}/config/auth"), wanted)
        elif area == "postgrest":
            remote = _pick(api.get(f"{base}/postgrest"), wanted)
            if "db_schema" in remote and isinstance(remote["db_schema"], str):
                remote["db_schema"] = ",".join(s.strip() for s in remote["db_schema"].split(","))
            current[area] = remote
        elif area == "pooler":
            pools = api.get(f"{base}/config/database/pooler") or []
            primary = next((p for p in pools if p.get("database_type") == "PRIMARY"), pools[0] if pools else {})
            current[area] = _pick(primary, wanted)
        elif area == "network_restrictions":
            config = (api.get(f"{base}/network-restrictions") or {}).get("config") or {}
            current[area] = {"dbAllowedCidrs": sorted(config.get("dbAllowedCidrs") or []),
                             "dbAllowedCidrsV6": sorted(config.get("dbAllowedCidrsV6") or [])}
        elif area == "ssl_enforced":
            current[area] = ((api.get(f"{base}/ssl-enforcement") or {}).get("currentConfig") or {}).get("database")
        elif area == "storage":
            remote = api.get(f"{base}/config/storage") or {}
            image = ((remote.get("features") or {}).get("imageTransformation") or {}).get("enabled")
            current[area] = _pick({"fileSizeLimit": remote.get("fileSizeLimit"), "imageTransformation": image}, wanted)
    return current


def _pick(remote: Any, wanted: dict[str, Any]) -> dict[str, Any]:
    remote = remote if isinstance(remote, dict) else {}
    return {k: remote.get(k) for k in wanted}


def apply(api: ManagementApi, ref: str, desired: dict[str, Any], found: dict[str, dict[str, tuple[Any, Any]]],
          allow_restart: bool, log: Callable[[str], None] = lambda _: None, health_timeout: float = 300.0,
          health_interval: float = 5.0) -> None:
    """Send the changed areas (only their declared keys), after the services they touch
    report healthy. A restart that is not allowed stops everything before a request."""
    if not found:
        return
    needs_restart = restarts(found)
    if needs_restart and not allow_restart:
        raise SettingsApplyError(
            f"failed to change project {ref}: postgres {', '.join(needs_restart)} only take effect after a "
            "database restart\nSet allowRestart: true for this stack (and pick a quiet hour), or leave them as "
            "they are. Nothing was changed.")
    services = sorted({s for area in found for s in AREA_SERVICES[area]})
    api.wait_healthy(ref, services, timeout=health_timeout, interval=health_interval)
    base = f"/v1/projects/{ref}"
    for area in AREAS:
        if area not in found:
            continue
        wanted = desired[area]
        log(f"updating {area}: " + "; ".join(describe({area: found[area]})))
        if area == "postgres":
            api.request("PUT", f"{base}/config/database/postgres",
                        json_body={**wanted, **({"restart_database": True} if needs_restart else {})})
        elif area == "auth":
            api.request("PATCH", f"{base}/config/auth", json_body=wanted)
        elif area == "postgrest":
            api.request("PATCH", f"{base}/postgrest", json_body=wanted)
        elif area == "pooler":
            api.request("PATCH", f"{base}/config/database/pooler", json_body=wanted)
        elif area == "network_restrictions":
            api.request("POST", f"{base}/network-restrictions/apply", json_body=wanted)
        elif area == "ssl_enforced":
            api.request("PUT", f"{base}/ssl-enforcement", json_body={"requestedConfig": {"database": wanted}})
        elif area == "storage":
            body: dict[str, Any] = {}
            if "fileSizeLimit" in wanted:
                body["fileSizeLimit"] = wanted["fileSizeLimit"]
            if "imageTransformation" in wanted:
                body["features"] = {"imageTransformation": {"enabled": wanted["imageTransformation"]}}
            api.request("PATCH", f"{base}/config/storage", json_body=body)
