"""supabase-auth-require-password-length: passwords have at least `minimumLength` (8)
characters. Mandatory in config/prod.json, advisory in config/staging.json."""

from pulumi_policy import EnforcementLevel, PolicyConfigSchema, ResourceValidationPolicy

from supagate.pack.settings_checks import password_length_violations
from supagate.offline.resource_types import PROJECT_SETTINGS

DEFAULT_MINIMUM = 8


def validate(args, report_violation) -> None:
    if args.resource_type == PROJECT_SETTINGS:
        minimum = int((args.get_config() or {}).get("minimumLength", DEFAULT_MINIMUM))
        for finding in password_length_violations(args.props, minimum):
            report_violation(finding.sentence())


policy = ResourceValidationPolicy(
    name="supabase-auth-require-password-length",
    description="Sign-up and password changes require passwords of at least 8 characters.",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=validate,
    config_schema=PolicyConfigSchema(properties={
        "minimumLength": {"type": "integer", "default": DEFAULT_MINIMUM, "minimum": 6}}),
    remediation_steps="Set supabase-platform:auth.passwordMinLength to 8 or more.",
)
