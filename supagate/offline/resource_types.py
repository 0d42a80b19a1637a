"""The typed resources the program registers and the policy pack reads: their type tokens
and input shapes, in one place both sides import.

Input shapes (keys as the engine sees them):
- Migrations: db_url (secret), migrations [{version, name, sql, down_sql, checksum,
  transactional}], exposed_schemas [str], lock_timeout, statement_timeout, baseline (optional), and on prod
  `promotion` {stack, checksums {version: sha256} | None} read from the staging stack.
- ProjectSettings: project_ref, api_url, access_token (secret), allow_restart, and the
  declared areas only (supagate/supabase_api/areas.py): postgres, auth
  (UpdateAuthConfigBody keys: jwt_exp, password_min_length, ...), postgrest (db_schema,
  max_rows), pooler, network_restrictions {dbAllowedCidrs, dbAllowedCidrsV6},
  ssl_enforced (bool), storage.
- EdgeFunction: project_ref, api_url, access_token (secret), slug, entrypoint, verify_jwt,
  signature_header, import_map, static_patterns, files {path: text}, content_sha256.
- FunctionSecrets: project_ref, api_url, access_token, secrets {NAME: value} (secret outputs).
- CronJob: db_url (secret), name, schedule (UTC), command, active, display_timezone, next_runs.
- AlertRule: db_url (secret), name, tier, rule (canonical: supagate/ops/kinds.py).
- AlertChannel: db_url (secret), name, type, secret and sign_with (names in alertSecrets), labels.
- FeatureFlag: db_url (secret), name, tier, flag (canonical: supagate/ops/flags.py: key, kind, salt, enabled,
  audience, steps [basis points; -1 internal], step, soak, paused, advance, guards, internal_users).
- RateLimitPolicy: db_url (secret), name (the function), tier, max_requests, window_seconds, key_by, probe.
- Seed: db_url (secret), tier, files [{path, sql, hash}]. DatabaseEnvironment: db_url (secret), tier, project_ref.
- GitHub environments are pulumi-github's own RepositoryEnvironment resources.
"""

from __future__ import annotations

from typing import Any

from supagate.migrations.files import Migration, parse_migration

MIGRATIONS = "pulumi-python:dynamic/supabase:Migrations"
PROJECT_SETTINGS = "pulumi-python:dynamic/supabase:ProjectSettings"
EDGE_FUNCTION = "pulumi-python:dynamic/supabase:EdgeFunction"
FUNCTION_SECRETS = "pulumi-python:dynamic/supabase:FunctionSecrets"
CRON_JOB = "pulumi-python:dynamic/supabase:CronJob"
ALERT_RULE = "pulumi-python:dynamic/supabase:AlertRule"
ALERT_CHANNEL = "pulumi-python:dynamic/supabase:AlertChannel"
FEATURE_FLAG = "pulumi-python:dynamic/supabase:FeatureFlag"
SEED = "pulumi-python:dynamic/supabase:Seed"
RATE_LIMIT_POLICY = "pulumi-python:dynamic/supabase:RateLimitPolicy"
DATABASE_ENVIRONMENT = "pulumi-python:dynamic/supabase:DatabaseEnvironment"
GITHUB_ENVIRONMENT = "github:index/repositoryEnvironment:RepositoryEnvironment"
GITHUB_DEPLOYMENT_POLICY = "github:index/repositoryEnvironmentDeploymentPolicy:RepositoryEnvironmentDeploymentPolicy"
COMMAND = "command:local:Command"

# Inputs that hold secrets and so must be declared additional secret outputs.
SECRET_INPUTS = {MIGRATIONS: ("db_url",), FUNCTION_SECRETS: ("secrets", "access_token"),
                 PROJECT_SETTINGS: ("access_token",), EDGE_FUNCTION: ("access_token",),
                 CRON_JOB: ("db_url",), ALERT_RULE: ("db_url",), ALERT_CHANNEL: ("db_url",),
                 FEATURE_FLAG: ("db_url",), SEED: ("db_url",), DATABASE_ENVIRONMENT: ("db_url",),
                 RATE_LIMIT_POLICY: ("db_url",), COMMAND: ("environment",)}
# Outputs that must be secret whatever the inputs: what a command printed came from prod
# (verify's report, pg_dump's messages) and the state would otherwise keep it in plain text.
SECRET_OUTPUTS = {COMMAND: ("stdout", "stderr")}
COMMAND_SECRET_OUTPUTS = (*SECRET_INPUTS[COMMAND], *SECRET_OUTPUTS[COMMAND])


def migration_inputs(migrations: list[Migration]) -> list[dict[str, Any]]:
    return [{"version": m.version, "name": m.name, "sql": m.sql, "down_sql": m.down_sql,
             "checksum": m.checksum, "transactional": m.transactional} for m in migrations]


def migrations_from_inputs(props: dict[str, Any]) -> list[Migration]:
    """Rebuild Migration models from the SQL in a resource's inputs (never from a verdict)."""
    return [parse_migration(m["version"], m["name"], m["sql"],
                            f"supabase/migrations/{m['version']}_{m['name']}.sql", m.get("down_sql"))
            for m in props.get("migrations") or []]


def from_engine(value: Any) -> Any:
    """Inputs as the engine delivers them to a provider: protobuf numbers are doubles, so an
    integer arrives as 3600.0. Whole numbers become ints again (request bodies, messages,
    range() of retry attempts); booleans and other values pass through."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: from_engine(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [from_engine(v) for v in value]
    return value


def engine_values(method):
    """Decorate a dynamic provider's method: every dict argument goes through from_engine."""
    import functools

    @functools.wraps(method)
    def wrapper(self, *args):
        return method(self, *(from_engine(a) if isinstance(a, dict) else a for a in args))

    return wrapper
