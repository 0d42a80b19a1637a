"""supabase-database-require-ssl: the project refuses database connections without SSL."""

from pulumi_policy import EnforcementLevel, ResourceValidationPolicy

from supagate.pack.settings_checks import ssl_violations
from supagate.offline.resource_types import PROJECT_SETTINGS


def validate(args, report_violation) -> None:
    if args.resource_type == PROJECT_SETTINGS:
        for finding in ssl_violations(args.props):
            report_violation(finding.sentence())


policy = ResourceValidationPolicy(
    name="supabase-database-require-ssl",
    description="The database only accepts SSL connections.",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=validate,
    remediation_steps="Set supabase-platform:sslEnforced to true.",
)
