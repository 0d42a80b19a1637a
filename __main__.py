"""supabase-platform: load the stack's settings, build the components, export outputs."""

import pulumi

from components.database import Database, DatabaseArgs
from supagate.migrations import load_migrations
from components.stack_config import stack_config_values
from supagate.settings import NAMESPACE, load_settings

stack = pulumi.get_stack()
config = pulumi.Config(NAMESPACE)
# Settings are validated as a whole before any resource is registered.
settings = load_settings(stack, stack_config_values(), f"Pulumi.{stack}.yaml")
migrations = load_migrations(settings.migrations.directory, warn=pulumi.log.warn)

promotion = None
if settings.staging_stack:
    # Prod promotes from staging: what staging applied comes from its own stack outputs.
    staging = pulumi.StackReference(settings.staging_stack)
    promotion = {"stack": settings.staging_stack, "checksums": staging.get_output("migrationChecksums")}

database = Database("database", DatabaseArgs(
    db_url=config.require_secret("dbUrl"),
    migrations=migrations,
    exposed_schemas=settings.exposed_schemas,
    promotion=promotion,
    lock_timeout=settings.migrations.lock_timeout,
    statement_timeout=settings.migrations.statement_timeout,
))

pulumi.export("projectRef", settings.project_ref)
pulumi.export("exposedSchemas", list(settings.exposed_schemas))
pulumi.export("appliedMigrations", database.applied_versions)
pulumi.export("migrationChecksums", database.migration_checksums)
