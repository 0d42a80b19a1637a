"""supabase-alerts-require-coverage (stack): the stack watches the signals every deploy
guide lists (overdue jobs, dead letters, connection saturation, cron failures, the
scheduler heartbeat); `requiredKinds` changes the list."""

from pulumi_policy import EnforcementLevel, PolicyConfigSchema, StackValidationPolicy

from supagate.pack.ops_checks import REQUIRED_KINDS, alert_coverage_violations


def validate(args, report_violation) -> None:
    required = (args.get_config() or {}).get("requiredKinds") or list(REQUIRED_KINDS)
    for finding in alert_coverage_violations(((r.resource_type, r.props) for r in args.resources), required):
        report_violation(finding.sentence())


policy = StackValidationPolicy(
    name="supabase-alerts-require-coverage",
    description="The stack has alert rules for overdue jobs, dead letters, connections, cron failures and the heartbeat.",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=validate,
    config_schema=PolicyConfigSchema(properties={
        "requiredKinds": {"type": "array", "items": {"type": "string"}, "default": list(REQUIRED_KINDS)}}),
    remediation_steps="Add rules of the missing kinds under alerts.rules in the stack file.",
)
