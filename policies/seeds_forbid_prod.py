"""supabase-seeds-forbid-prod: no seed data on a production tier (the settings and the
database refuse it too; this is the layer a pull request's preview shows)."""

from pulumi_policy import EnforcementLevel, ResourceValidationPolicy

from supagate.offline.resource_types import SEED


def validate(args, report_violation) -> None:
    if args.resource_type == SEED and args.props.get("tier") not in ("staging", "development"):
        report_violation(f"Seed data on a {args.props.get('tier')!r} tier: seeds never run on production. "
                         "Fix: Set seed.enabled only on staging or development stacks.")


policy = ResourceValidationPolicy(
    name="supabase-seeds-forbid-prod",
    description="Seed data runs below production only.",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=validate,
    remediation_steps="Set seed.enabled only on staging or development stacks.",
)
