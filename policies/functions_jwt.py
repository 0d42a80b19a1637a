"""supabase-functions-require-jwt: every edge function verifies the caller's JWT, unless
its slug is on this policy's `allowUnverified` list and it checks a signature header."""

from pulumi_policy import EnforcementLevel, PolicyConfigSchema, ResourceValidationPolicy

from supagate.pack.settings_checks import function_jwt_violations
from supagate.offline.resource_types import EDGE_FUNCTION


def validate(args, report_violation) -> None:
    if args.resource_type == EDGE_FUNCTION:
        allowed = (args.get_config() or {}).get("allowUnverified") or []
        for finding in function_jwt_violations(args.props, allowed):
            report_violation(finding.sentence())


policy = ResourceValidationPolicy(
    name="supabase-functions-require-jwt",
    description="Edge functions verify JWTs; webhooks without one must be allow-listed and check a signature.",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=validate,
    config_schema=PolicyConfigSchema(properties={
        "allowUnverified": {"type": "array", "items": {"type": "string"}, "default": []}}),
    remediation_steps="Keep verify_jwt on; for a webhook, set its signatureHeader and allow-list its slug.",
)
