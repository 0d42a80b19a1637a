"""supabase-migrations-require-staging-first: on prod, every migration has been applied on
staging with the same checksum, and every edge function this deploy ships runs the code
staging runs. A resource policy on the Migrations inputs, because the engine gives
resource policies the new inputs at every preview; a stack policy would see the
resource's old outputs when only a function changed.

Staging's checksums and function hashes reach the program through a stack reference and
arrive in the `promotion` input with this deploy's function hashes; the checksums of the
SQL are recomputed here. With `phase: pull-request` in the policy config (a prod preview
on a pull request, before staging could deploy it) each message says it will be required
at deploy."""

from pulumi_policy import EnforcementLevel, PolicyConfigSchema, ResourceValidationPolicy

from supagate.offline.resource_types import MIGRATIONS
from supagate.pack.checks import function_promotion_violations, plain, promotion_violations


def validate(args, report_violation) -> None:
    if args.resource_type != MIGRATIONS:
        return
    findings = promotion_violations(args.props)
    if findings is None:
        args.not_applicable("this stack promotes from no staging stack (it is not prod)")
        return
    promotion = plain(args.props.get("promotion")) or {}
    deploying = promotion.get("deploying_functions") if isinstance(promotion, dict) else None
    findings += function_promotion_violations(promotion, deploying if isinstance(deploying, dict) else {})
    prefix = "Will be required at deploy: " if (args.get_config() or {}).get("phase") == "pull-request" else ""
    for finding in findings:
        report_violation(prefix + finding.sentence())


policy = ResourceValidationPolicy(
    name="supabase-migrations-require-staging-first",
    description="On prod, every migration and function was deployed on staging first, unchanged.",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=validate,
    config_schema=PolicyConfigSchema(properties={
        "phase": {"type": "string", "enum": ["deploy", "pull-request"], "default": "deploy"}}),
    remediation_steps="Deploy the same commit to staging (pulumi up --stack staging), then promote it to prod.",
)
