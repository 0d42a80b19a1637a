"""supabase-ratelimits-require-probe (stack): every edge function that turns JWT
verification off (a public webhook) has a rate limit that `supagate verify --rate-limit`
proves after each deploy."""

from pulumi_policy import EnforcementLevel, StackValidationPolicy

from supagate.pack.ops_checks import rate_limit_probe_violations


def validate(args, report_violation) -> None:
    for finding in rate_limit_probe_violations((r.resource_type, r.props) for r in args.resources):
        report_violation(finding.sentence())


policy = StackValidationPolicy(
    name="supabase-ratelimits-require-probe",
    description="Functions without JWT verification have a probed rate limit.",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=validate,
    remediation_steps="Declare rateLimits.<function> with probe: true in the stack file.",
)
