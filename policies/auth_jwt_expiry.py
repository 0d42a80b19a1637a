"""supabase-auth-limit-jwt-expiry: access tokens expire within `maximumSeconds` (3600)."""

from pulumi_policy import EnforcementLevel, PolicyConfigSchema, ResourceValidationPolicy

from supagate.pack.settings_checks import jwt_expiry_violations
from supagate.offline.resource_types import PROJECT_SETTINGS

DEFAULT_MAXIMUM = 3600


def validate(args, report_violation) -> None:
    if args.resource_type == PROJECT_SETTINGS:
        maximum = int((args.get_config() or {}).get("maximumSeconds", DEFAULT_MAXIMUM))
        for finding in jwt_expiry_violations(args.props, maximum):
            report_violation(finding.sentence())


policy = ResourceValidationPolicy(
    name="supabase-auth-limit-jwt-expiry",
    description="Access tokens (JWTs) expire within an hour, so a stolen token is short-lived.",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=validate,
    config_schema=PolicyConfigSchema(properties={
        "maximumSeconds": {"type": "integer", "default": DEFAULT_MAXIMUM, "minimum": 60}}),
    remediation_steps="Set supabase-platform:auth.jwtExpiry to 3600 or less.",
)
