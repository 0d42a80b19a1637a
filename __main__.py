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

database = Database("database", DatabaseArgs(
    db_url=config.require_secret("dbUrl"),
    migrations=migrations,
    lock_timeout=settings.migrations.lock_timeout,
    statement_timeout=settings.migrations.statement_timeout,
))

pulumi.export("projectRef", settings.project_ref)
pulumi.export("exposedSchemas", list(settings.exposed_schemas))
pulumi.export("appliedMigrations", database.applied_versions)
pulumi.export("migrationChecksums", database.migration_checksums)
