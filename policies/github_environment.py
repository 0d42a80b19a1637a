"""supabase-github-protect-environment: the deployment environments named in
`protectedEnvironments` (default: prod, production) require a reviewer, prevent
self-review, do not let admins bypass them, and deploy only from protected branches or
chosen tags."""

from pulumi_policy import EnforcementLevel, PolicyConfigSchema, ResourceValidationPolicy

from supagate.pack.settings_checks import environment_violations
from supagate.offline.resource_types import GITHUB_ENVIRONMENT

DEFAULT_PROTECTED = ["prod", "production"]


def validate(args, report_violation) -> None:
    if args.resource_type != GITHUB_ENVIRONMENT:
        return
    protected = (args.get_config() or {}).get("protectedEnvironments") or DEFAULT_PROTECTED
    if args.props.get("environment") not in protected:
        return
    for finding in environment_violations(args.props):
        report_violation(finding.sentence())


policy = ResourceValidationPolicy(
    name="supabase-github-protect-environment",
    description="The prod deployment environment needs a reviewer who is not the deployer, and admins "
                "cannot bypass it.",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=validate,
    config_schema=PolicyConfigSchema(properties={
        "protectedEnvironments": {"type": "array", "items": {"type": "string"}, "default": DEFAULT_PROTECTED}}),
    remediation_steps="Set github.environment reviewers, preventSelfReview: true, and deployment branches/tags.",
)
