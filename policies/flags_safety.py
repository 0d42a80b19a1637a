"""supabase-flags-safety-always-on: a safety flag (crisis detection...) is on for everyone:
never disabled, paused, partially rolled out or limited to an audience."""

from pulumi_policy import EnforcementLevel, ResourceValidationPolicy

from supagate.offline.resource_types import FEATURE_FLAG
from supagate.pack.ops_checks import flag_safety_violations


def validate(args, report_violation) -> None:
    if args.resource_type == FEATURE_FLAG:
        for finding in flag_safety_violations(args.props):
            report_violation(finding.sentence())


policy = ResourceValidationPolicy(
    name="supabase-flags-safety-always-on",
    description="Safety flags are on for everyone, always.",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=validate,
    remediation_steps="Declare the flag as `kind: safety` with no other setting that narrows it.",
)
