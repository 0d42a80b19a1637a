"""The project's database: migrations applied by supagate's engine on `pulumi up`."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from components.providers.migrations import Migrations, migration_inputs
from supagate.migrations import Migration


@dataclass
class DatabaseArgs:
    db_url: pulumi.Input[str]  # a Pulumi secret
    migrations: list[Migration]
    exposed_schemas: tuple[str, ...] = ("public", "graphql_public")
    lock_timeout: str = "10s"
    statement_timeout: str = "15min"
    # On prod: {"stack": <staging stack>, "checksums": <its migrationChecksums output>}, so
    # the policy pack can require every migration on staging first.
    promotion: pulumi.Input[dict] | None = None


class Database(pulumi.ComponentResource):
    def __init__(self, name: str, args: DatabaseArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("supabase-platform:database:Database", name, None, opts)
        self.migrations = Migrations(
            f"{name}-migrations",
            {
                "db_url": pulumi.Output.secret(args.db_url),
                "migrations": migration_inputs(args.migrations),
                "exposed_schemas": list(args.exposed_schemas),
                **({"promotion": args.promotion} if args.promotion is not None else {}),
                "lock_timeout": args.lock_timeout,
                "statement_timeout": args.statement_timeout,
            },
            pulumi.ResourceOptions(parent=self),
        )
        self.applied_versions = self.migrations.applied_versions
        self.migration_checksums = {m.version: m.checksum for m in args.migrations}
        self.register_outputs({
            "applied_versions": self.applied_versions,
            "migration_checksums": self.migration_checksums,
        })
