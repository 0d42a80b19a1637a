"""supabase-migrations-verify-checksums: each migration's recorded checksum is the sha256
of the SQL that will run, recomputed here from the inputs."""

from pulumi_policy import EnforcementLevel, ResourceValidationPolicy

from supagate.pack.checks import checksum_mismatches
from supagate.offline.resource_types import MIGRATIONS


def validate(args, report_violation) -> None:
    if args.resource_type == MIGRATIONS:
        for finding in checksum_mismatches(args.props):
            report_violation(finding.sentence())


policy = ResourceValidationPolicy(
    name="supabase-migrations-verify-checksums",
    description="Each migration's recorded checksum is the sha256 of the SQL that will run.",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=validate,
    remediation_steps="Rebuild the program's inputs from supabase/migrations; never edit a checksum by hand.",
)
