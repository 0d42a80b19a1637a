"""The project's settings areas, one row each: which stack keys it holds, how its declared
values are read from and written to the Management API, and which services must be
healthy before it changes. Both the read and the write side of ProjectSettings walk this
one table, in its order."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any, Callable

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


@dataclass(frozen=True)
class Area:
    name: str
    services: tuple[str, ...]  # must report healthy before this area changes
    desired: Callable[[Any], Any]  # settings -> the API's values for the declared keys (None: not managed)
    read: Callable[[Any, str, Any], Any]  # (api, /v1/projects/<ref>, wanted) -> current values of those keys
    write: Callable[..., None]  # (api, base, wanted, restart, applied) -> sends them; `applied` reads back


def _pick(remote: Any, wanted: dict[str, Any]) -> dict[str, Any]:
    remote = remote if isinstance(remote, dict) else {}
    return {k: remote.get(k) for k in wanted}


def _declared(model, pairs) -> dict[str, Any]:
    """{api key: value} for the model's fields the stack file sets."""
    return {api: getattr(model, name) for name, api in pairs if name in model.model_fields_set}


# ---------------------------------------------------------------- postgres

def _postgres_desired(s):
    if "postgres" not in s.model_fields_set or not s.postgres:
        return None
    return {k: bool(v) if POSTGRES_PARAMETERS[k] is bool else POSTGRES_PARAMETERS[k](v) for k, v in s.postgres.items()}


def _postgres_write(api, base, wanted, restart, applied=None):
    api.request("PUT", f"{base}/config/database/postgres", applied=applied,
                json_body={**wanted, **({"restart_database": True} if restart else {})})


# ---------------------------------------------------------------- auth

def _auth_desired(s):
    if "auth" not in s.model_fields_set:
        return None
    auth = s.auth
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
    for name in sorted(auth.model_fields_set):
        body.update(mapping[name]())
    return body


# ---------------------------------------------------------------- postgrest

def _postgrest_desired(s):
    body = {}
    if "exposed_schemas" in s.model_fields_set:
        body["db_schema"] = ",".join(s.exposed_schemas)
    if "max_rows" in s.model_fields_set:
        body["max_rows"] = s.max_rows
    return body or None


def _postgrest_read(api, base, wanted):
    remote = _pick(api.get(f"{base}/postgrest"), wanted)
    if isinstance(remote.get("db_schema"), str):
        remote["db_schema"] = ",".join(s.strip() for s in remote["db_schema"].split(","))
    return remote


# ---------------------------------------------------------------- pooler

def _pooler_desired(s):
    if "pooler" not in s.model_fields_set or s.pooler is None:
        return None
    return _declared(s.pooler, (("default_pool_size", "default_pool_size"), ("pool_mode", "pool_mode")))


def _pooler_read(api, base, wanted):
    pools = api.get(f"{base}/config/database/pooler") or []
    primary = next((p for p in pools if p.get("database_type") == "PRIMARY"), pools[0] if pools else {})
    return _pick(primary, wanted)


# ---------------------------------------------------------------- network restrictions

def _network_desired(s):
    if "network_restrictions" not in s.model_fields_set or not s.network_restrictions:  # [] = not managed
        return None
    by_version = {4: [], 6: []}
    for cidr in s.network_restrictions:
        by_version[ipaddress.ip_network(cidr).version].append(cidr)
    return {"dbAllowedCidrs": sorted(by_version[4]), "dbAllowedCidrsV6": sorted(by_version[6])}


def _network_read(api, base, wanted):
    config = (api.get(f"{base}/network-restrictions") or {}).get("config") or {}
    return {"dbAllowedCidrs": sorted(config.get("dbAllowedCidrs") or []),
            "dbAllowedCidrsV6": sorted(config.get("dbAllowedCidrsV6") or [])}


# ---------------------------------------------------------------- storage

def _storage_desired(s):
    if "storage" not in s.model_fields_set or s.storage is None:
        return None
    return _declared(s.storage, (("file_size_limit", "fileSizeLimit"), ("image_transformation", "imageTransformation")))


def _storage_read(api, base, wanted):
    remote = api.get(f"{base}/config/storage") or {}
    image = ((remote.get("features") or {}).get("imageTransformation") or {}).get("enabled")
    return _pick({"fileSizeLimit": remote.get("fileSizeLimit"), "imageTransformation": image}, wanted)


def _storage_write(api, base, wanted, _restart, applied=None):
    body: dict[str, Any] = {}
    if "fileSizeLimit" in wanted:
        body["fileSizeLimit"] = wanted["fileSizeLimit"]
    if "imageTransformation" in wanted:
        body["features"] = {"imageTransformation": {"enabled": wanted["imageTransformation"]}}
    api.request("PATCH", f"{base}/config/storage", json_body=body, applied=applied)


AREAS: dict[str, Area] = {a.name: a for a in (
    Area("postgres", ("db",), _postgres_desired,
         lambda api, base, wanted: _pick(api.get(f"{base}/config/database/postgres"), wanted), _postgres_write),
    Area("auth", ("auth",), _auth_desired,
         lambda api, base, wanted: _pick(api.get(f"{base}/config/auth"), wanted),
         lambda api, base, wanted, _r, applied=None: api.request("PATCH", f"{base}/config/auth", json_body=wanted,
                                                                 applied=applied)),
    Area("postgrest", ("rest",), _postgrest_desired, _postgrest_read,
         lambda api, base, wanted, _r, applied=None: api.request("PATCH", f"{base}/postgrest", json_body=wanted,
                                                                 applied=applied)),
    Area("pooler", ("pooler",), _pooler_desired, _pooler_read,
         lambda api, base, wanted, _r, applied=None: api.request("PATCH", f"{base}/config/database/pooler",
                                                                 json_body=wanted, applied=applied)),
    Area("network_restrictions", ("db",), _network_desired, _network_read,
         lambda api, base, wanted, _r, applied=None: api.request("POST", f"{base}/network-restrictions/apply",
                                                                 json_body=wanted, applied=applied)),
    Area("ssl_enforced", ("db",),
         lambda s: s.ssl_enforced if "ssl_enforced" in s.model_fields_set else None,
         lambda api, base, _w: ((api.get(f"{base}/ssl-enforcement") or {}).get("currentConfig") or {}).get("database"),
         lambda api, base, wanted, _r, applied=None: api.request(
             "PUT", f"{base}/ssl-enforcement", json_body={"requestedConfig": {"database": wanted}}, applied=applied)),
    Area("storage", ("storage",), _storage_desired, _storage_read, _storage_write),
)}
