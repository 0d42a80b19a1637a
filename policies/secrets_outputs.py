"""supabase-secrets-require-secret-outputs: inputs that hold secrets (the database URL,
function secrets) and a command's stdout and stderr (read from prod) are declared secret
outputs, so the state stores them encrypted, and no function secret is empty."""

from pulumi_policy import EnforcementLevel, ResourceValidationPolicy

from supagate.pack.settings_checks import secret_output_violations
from supagate.offline.resource_types import SECRET_INPUTS, SECRET_OUTPUTS


def validate(args, report_violation) -> None:
    if args.resource_type in SECRET_INPUTS or args.resource_type in SECRET_OUTPUTS:
        for finding in secret_output_violations(args.resource_type, args.props,
                                                args.opts.additional_secret_outputs):
            report_violation(finding.sentence())


policy = ResourceValidationPolicy(
    name="supabase-secrets-require-secret-outputs",
    description="Secret inputs are stored encrypted in the state and are never empty.",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=validate,
    remediation_steps="Set values with `pulumi config set --secret` and declare additional_secret_outputs.",
)
