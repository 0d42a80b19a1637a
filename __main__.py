"""supabase-platform: load the stack's settings, build the components, export outputs."""

from pathlib import Path

import pulumi
from pulumi.runtime.config import is_config_secret

from components.database import Database, DatabaseArgs
from components.delivery import Delivery, DeliveryArgs
from components.operations import Operations, OperationsArgs, operations_args
from components.project import Project, ProjectArgs
from components.stack_config import stack_config_values
from components.verification import Verification
from supagate.delivery.environments import VERIFY_DB_URL
from supagate.supabase_api.edge_functions import discover
from supagate.migrations.files import load_migrations
from supagate.supabase_api.project_settings import desired_state
from supagate.config.loading import load_settings
from supagate.config.models import NAMESPACE

stack = pulumi.get_stack()
config = pulumi.Config(NAMESPACE)
# Settings are validated as a whole before any resource is registered.
settings = load_settings(stack, stack_config_values(), f"Pulumi.{stack}.yaml",
                         is_secret=lambda key: is_config_secret(f"{NAMESPACE}:{key}"),
                         functions_dir=Path("supabase/functions"))
migrations = load_migrations(settings.migrations.directory, warn=pulumi.log.warn)

functions = discover("supabase", settings.functions)
promotion = preflight = None
if settings.staging_stack:
    # Prod promotes from staging: what staging applied comes from its own stack outputs.
    staging = pulumi.StackReference(settings.staging_stack)
    promotion = {"stack": settings.staging_stack, "checksums": staging.get_output("migrationChecksums"),
                 "function_hashes": staging.get_output("functionHashes"),
                 "deploying_functions": {f.slug: f.content_sha256 for f in functions}}
if settings.is_production:
    preflight = {
        "limits": {"max_transaction_age_seconds": settings.monitoring.max_transaction_age_seconds,
                   "max_connections_percent": settings.monitoring.max_connections_percent,
                   "max_backup_age_hours": settings.backups.max_backup_age_hours,
                   "require_pitr": settings.backups.pitr_enabled},
        "api": {"project_ref": settings.project_ref, "api_url": settings.management_api_url,
                "access_token": config.require_secret("supabaseAccessToken"),
                **({"allow_unlisted_api": True} if settings.allow_unlisted_management_api else {})},
    }

database = Database("database", DatabaseArgs(
    db_url=config.require_secret("dbUrl"),
    migrations=migrations,
    exposed_schemas=settings.exposed_schemas,
    promotion=promotion,
    preflight=preflight,
    snapshot=settings.is_production,
    lock_timeout=settings.migrations.lock_timeout,
    baseline=settings.migrations.baseline,
    statement_timeout=settings.migrations.statement_timeout,
))

project = Project("project", ProjectArgs(
    project_ref=settings.project_ref,
    access_token=config.require_secret("supabaseAccessToken"),
    settings=desired_state(settings),
    functions=functions,
    secrets={**{name: pulumi.Output.secret(settings.function_secrets[name].get_secret_value())
                for name in settings.secret_names},
             # The health function's thresholds are the stack's, not the function's defaults.
             **(settings.monitoring.health_function_env()
                if settings.monitoring.health_function in {f.slug for f in functions} else {})},
    api_url=settings.management_api_url,
    allow_unlisted_api=settings.allow_unlisted_management_api,
    allow_restart=settings.allow_restart,
))

def optional_secret(value):
    """A secret the stack may leave empty (Pulumi.yaml defaults it to "")."""
    return pulumi.Output.secret(value.get_secret_value()) if value and value.get_secret_value() else None


if settings.github.repository:
    # Every credential goes to a GitHub environment, never the repository (components/delivery.py).
    delivery = Delivery("delivery", DeliveryArgs(
        stack=stack,
        tier=settings.tier,
        github=settings.github,
        project_ref=settings.project_ref,
        pulumi_stack=f"{pulumi.get_organization()}/{pulumi.get_project()}/{stack}",
        environment_secrets={"SUPABASE_DB_URL": config.require_secret("dbUrl"),
                             "SUPABASE_ACCESS_TOKEN": config.require_secret("supabaseAccessToken"),
                             **({"PULUMI_ACCESS_TOKEN": optional_secret(settings.pulumi_access_token)}
                                if optional_secret(settings.pulumi_access_token) is not None else {})},
        # The settings refuse an alert secret named like the verify URL (environments.py); the
        # verify URL is still written last, so no channel's entry could ever replace it.
        health_secrets={name: optional_secret(value) for name, value in
                        [*settings.alert_secrets.items(), (VERIFY_DB_URL, settings.verify_db_url)]
                        if settings.is_production and optional_secret(value) is not None},
        token=optional_secret(settings.github_token),
    ))

operations = operations_args(settings, migrations, {f.slug for f in functions})
if operations is not None:
    # After the migrations: the ops schema and the jobs' functions come from them.
    operations = Operations("operations", OperationsArgs(db_url=config.require_secret("dbUrl"),
                                                         depends_on=[database], **operations))

verification = Verification(
    "verification", stack, config.require_secret("dbUrl"),
    triggers=[database.migration_set, *(f.content_sha256 for f in functions)],
    probe_secret=(pulumi.Output.secret(settings.function_secrets["RATE_LIMIT_PROBE_SECRET"].get_secret_value())
                  if any(r.probe for r in settings.rate_limits.values()) else None),
    opts=pulumi.ResourceOptions(depends_on=[database, project, *([operations] if operations else [])]))

pulumi.export("projectRef", settings.project_ref)
pulumi.export("functionHashes", {f.slug: f.content_sha256 for f in functions})
pulumi.export("functionVersions", project.function_versions)
pulumi.export("exposedSchemas", list(settings.exposed_schemas))
pulumi.export("appliedMigrations", database.applied_versions)
pulumi.export("migrationChecksums", database.migration_checksums)
# Where each flag's rollout stands, as the database holds it (an auto rollout moves on its own).
pulumi.export("flagRollouts", operations.flag_rollouts if operations else {})
