"""The project's database: migrations applied by supagate's engine on `pulumi up`."""

from __future__ import annotations

import os
from dataclasses import dataclass

import pulumi
from pulumi_command import local

from components.providers.migrations import Migrations
from supagate.postgres.connect import libpq_env
from supagate.migrations.files import Migration, sha256
from supagate.offline.resource_types import COMMAND_SECRET_OUTPUTS, migration_inputs


def set_hash(migrations: list[Migration]) -> str:
    """One hash for the whole migration set: a new snapshot whenever it changes."""
    return sha256("\n".join(f"{m.version}:{m.checksum}" for m in migrations))


@dataclass
class DatabaseArgs:
    db_url: pulumi.Input[str]  # a Pulumi secret
    migrations: list[Migration]
    exposed_schemas: tuple[str, ...] = ("public", "graphql_public")
    lock_timeout: str = "10s"
    baseline: str = ""  # migrations at or before it are history for the per-statement gate rules
    statement_timeout: str = "15min"
    # On prod: {"stack": <staging stack>, "checksums": <its migrationChecksums output>}, so
    # the policy pack can require every migration on staging first.
    promotion: pulumi.Input[dict] | None = None
    # On prod: {"limits": {...}, "api": {...}}: checks the provider runs before migrating.
    preflight: pulumi.Input[dict] | None = None
    # On prod: pg_dump the database before a new migration set is applied, encrypted to the
    # age public keys in SNAPSHOT_RECIPIENTS (see below); with none, only the row counts are kept.
    snapshot: bool = False


class Database(pulumi.ComponentResource):
    def __init__(self, name: str, args: DatabaseArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("supabase-platform:database:Database", name, None, opts)
        migration_set = set_hash(args.migrations)
        depends_on = []
        if args.snapshot:
            # The recipients are never an input of ours: scripts/snapshot inherits SNAPSHOT_RECIPIENTS
            # from the process that runs `pulumi up` (deploy-prod sets it from the production
            # environment's variable, which no stack file or pull request can change).
            if not os.environ.get("SNAPSHOT_RECIPIENTS", "").strip():
                pulumi.log.warn("SNAPSHOT_RECIPIENTS is not set: the pre-migration snapshot keeps only the row counts "
                                "(a plain pg_dump never leaves the runner); to keep an encrypted dump, set the "
                                "production environment's secret: gh secret set SNAPSHOT_RECIPIENTS --env "
                                "production --body \"$(age-keygen -y key.txt)\"")
            # The connection string reaches pg_dump as PG* variables, never on its command line.
            self.snapshot = local.Command(
                f"{name}-snapshot",
                # pg_dump of the server's major version, piped into age: the workflow keeps only
                # backups/*.dump.age and the row counts.
                create="scripts/snapshot",
                environment=pulumi.Output.secret(args.db_url).apply(
                    lambda url: {**libpq_env(url), "SNAPSHOT_FILE": f"backups/pre-migration-{migration_set[:12]}.dump",
                                 "SNAPSHOT_INSTALL_CLIENT": "1"}),
                triggers=[migration_set],
                # What pg_dump and psql print comes from prod: stored encrypted, never streamed to
                # the deploy log (a failure still carries it in the error).
                logging=local.Logging.NONE,
                opts=pulumi.ResourceOptions(parent=self, additional_secret_outputs=list(COMMAND_SECRET_OUTPUTS)))
            depends_on.append(self.snapshot)
        self.migrations = Migrations(
            f"{name}-migrations",
            {
                "db_url": pulumi.Output.secret(args.db_url),
                "migrations": migration_inputs(args.migrations),
                "exposed_schemas": list(args.exposed_schemas),
                **({"promotion": args.promotion} if args.promotion is not None else {}),
                **({"preflight": pulumi.Output.secret(args.preflight)} if args.preflight is not None else {}),
                "lock_timeout": args.lock_timeout,
                **({"baseline": args.baseline} if args.baseline else {}),
                "statement_timeout": args.statement_timeout,
            },
            pulumi.ResourceOptions(parent=self, depends_on=depends_on),
        )
        self.migration_set = migration_set
        self.applied_versions = self.migrations.applied_versions
        self.migration_checksums = {m.version: m.checksum for m in args.migrations}
        self.register_outputs({
            "applied_versions": self.applied_versions,
            "migration_checksums": self.migration_checksums,
        })
