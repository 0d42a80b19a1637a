"""supabase-alerts-require-paging-channel (stack): on a production tier, a critical rule
notifies a channel other than GitHub issues (a webhook or Slack that pages someone)."""

from pulumi_policy import EnforcementLevel, StackValidationPolicy

from supagate.pack.ops_checks import alert_channel_violations


def validate(args, report_violation) -> None:
    for finding in alert_channel_violations(((r.resource_type, r.props) for r in args.resources), paging=True):
        report_violation(finding.sentence())


policy = StackValidationPolicy(
    name="supabase-alerts-require-paging-channel",
    description="Critical alert rules on production page someone, not only open an issue.",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=validate,
    remediation_steps="Add a webhook or slack channel to the critical rule's notify.",
)
