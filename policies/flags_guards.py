"""supabase-flags-guards-exist (stack): a flag's guards are alert rules of this stack, so a
rollout never advances watched by a rule that does not exist."""

from pulumi_policy import EnforcementLevel, StackValidationPolicy

from supagate.pack.ops_checks import flag_guard_violations


def validate(args, report_violation) -> None:
    for finding in flag_guard_violations((r.resource_type, r.props) for r in args.resources):
        report_violation(finding.sentence())


policy = StackValidationPolicy(
    name="supabase-flags-guards-exist",
    description="Feature flag guards name alert rules of the stack.",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=validate,
    remediation_steps="Name rules declared under alerts.rules in the flag's guards.",
)
