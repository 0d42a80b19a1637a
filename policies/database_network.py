"""supabase-database-require-network-restrictions: the database accepts connections only
from listed networks, none of them the whole internet."""

from pulumi_policy import EnforcementLevel, ResourceValidationPolicy

from supagate.pack.settings_checks import network_violations
from supagate.offline.resource_types import PROJECT_SETTINGS


def validate(args, report_violation) -> None:
    if args.resource_type == PROJECT_SETTINGS:
        for finding in network_violations(args.props):
            report_violation(finding.sentence())


policy = ResourceValidationPolicy(
    name="supabase-database-require-network-restrictions",
    description="The database is reachable only from listed CIDRs, never 0.0.0.0/0.",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=validate,
    remediation_steps="List the CIDRs that need access in supabase-platform:networkRestrictions.",
)
