"""supabase-alerts-sql-read-only: a custom `sql` alert rule is one read-only SELECT (it runs
every minute as the database owner)."""

from pulumi_policy import EnforcementLevel, ResourceValidationPolicy

from supagate.offline.resource_types import ALERT_RULE
from supagate.pack.ops_checks import alert_sql_violations


def validate(args, report_violation) -> None:
    if args.resource_type == ALERT_RULE:
        for finding in alert_sql_violations(args.props):
            report_violation(finding.sentence())


policy = ResourceValidationPolicy(
    name="supabase-alerts-sql-read-only",
    description="Custom SQL alert rules are one read-only SELECT.",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=validate,
    remediation_steps="Rewrite the query as one SELECT returning a number; move writes to a maintenance job.",
)
