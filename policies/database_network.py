"""supabase-database-require-network-restrictions: the database accepts connections only
from listed networks, none of them the whole internet."""

from pulumi_policy import EnforcementLevel, ResourceValidationPolicy

from supagate.policy_checks import network_violations
from supagate.resource_types import PROJECT_SETTINGS


def validate(args, report_violation) -> None:
    if args.resource_type == PROJECT_SETTINGS:
        for message in network_violations(args.props):
            report_violation(message)


policy = ResourceValidationPolicy(
    name="supabase-database-require-network-restrictions",
    description="The database is reachable only from listed CIDRs, never 0.0.0.0/0.",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=validate,
    remediation_steps="List the CIDRs that need access in supabase-platform:networkRestrictions.",
)
