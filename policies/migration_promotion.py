"""supabase-migrations-require-staging-first (stack): on prod, every migration has been
applied on staging with the same checksum, and every edge function runs staging's code. Staging's checksums reach the program through
a stack reference (its `migrationChecksums` output) and arrive here as the migrations
resource's `promotion` input; the checksums of the SQL are recomputed here."""

from pulumi_policy import EnforcementLevel, StackValidationPolicy

from supagate.pack.checks import function_promotion_violations, promotion_violations
from supagate.offline.resource_types import EDGE_FUNCTION, MIGRATIONS


def validate(args, report_violation) -> None:
    checked = False
    functions = {r.props.get("slug"): r.props.get("content_sha256") for r in args.resources
                 if r.resource_type == EDGE_FUNCTION}
    for resource in args.resources:
        if resource.resource_type != MIGRATIONS:
            continue
        findings = promotion_violations(resource.props)
        if findings is None:
            continue
        checked = True
        for finding in findings + function_promotion_violations(resource.props["promotion"], functions):
            report_violation(finding.sentence(), resource.urn)
    if not checked:
        args.not_applicable("no migrations resource promotes from a staging stack (this is not prod)")


policy = StackValidationPolicy(
    name="supabase-migrations-require-staging-first",
    description="On prod, every migration was applied on staging first, with the same checksum.",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=validate,
    remediation_steps="Deploy the same commit to staging (pulumi up --stack staging), then promote it to prod.",
)
