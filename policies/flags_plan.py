"""supabase-flags-plan-valid: a rollout plan rises strictly to 100%, starts with internal
users or at most 10%, and soaks at least `minimumSoak` seconds per step (e.g. 86400 on prod)."""

from pulumi_policy import EnforcementLevel, PolicyConfigSchema, ResourceValidationPolicy

from supagate.offline.resource_types import FEATURE_FLAG
from supagate.pack.ops_checks import flag_plan_violations


def validate(args, report_violation) -> None:
    if args.resource_type == FEATURE_FLAG:
        minimum = float((args.get_config() or {}).get("minimumSoak") or 0)
        for finding in flag_plan_violations(args.props, minimum):
            report_violation(finding.sentence())


policy = ResourceValidationPolicy(
    name="supabase-flags-plan-valid",
    description="Rollout plans rise to 100% from a small first step and soak long enough per step.",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=validate,
    config_schema=PolicyConfigSchema(properties={"minimumSoak": {"type": "number", "default": 0}}),
    remediation_steps="Use a preset plan (internal-10-50-100, canary-5-25-50-100) and a soak of at least the minimum.",
)
