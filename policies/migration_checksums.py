"""supabase-migrations-verify-checksums: every migration in a supabase:Migrations resource
carries the sha256 of its own SQL. The pack recomputes it from the SQL in the inputs and
never trusts the value the program computed."""

from __future__ import annotations

import hashlib

from pulumi_policy import EnforcementLevel, ResourceValidationPolicy

MIGRATIONS_TYPE = "pulumi-python:dynamic/supabase:Migrations"


def validate(args, report_violation) -> None:
    if args.resource_type != MIGRATIONS_TYPE:
        return
    for migration in args.props.get("migrations") or []:
        sql = migration.get("sql")
        if not isinstance(sql, str):
            report_violation(f"migration {migration.get('version')} has no SQL the pack can read; "
                             "pass the file contents as the `sql` input.")
            continue
        actual = hashlib.sha256(sql.encode()).hexdigest()
        if migration.get("checksum") != actual:
            report_violation(f"migration {migration.get('version')}_{migration.get('name')}: the checksum "
                             "does not match its SQL; rebuild the program's inputs from supabase/migrations.")


policy = ResourceValidationPolicy(
    name="supabase-migrations-verify-checksums",
    description="Each migration's recorded checksum is the sha256 of the SQL that will run.",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=validate,
)
