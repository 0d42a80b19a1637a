"""supabase-alerts-require-channel (stack): every alert rule notifies at least one channel
the stack declares; a rule nobody hears is no alert."""

from pulumi_policy import EnforcementLevel, StackValidationPolicy

from supagate.pack.ops_checks import alert_channel_violations


def validate(args, report_violation) -> None:
    for finding in alert_channel_violations(((r.resource_type, r.props) for r in args.resources), paging=False):
        report_violation(finding.sentence())


policy = StackValidationPolicy(
    name="supabase-alerts-require-channel",
    description="Every alert rule notifies a declared channel.",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=validate,
    remediation_steps="Name a channel from alerts.channels in the rule's notify or in alerts.defaults.notify.",
)
