"""The SQL gate rules of DESIGN.md, one policy each, on every supabase:Migrations
resource, built from the rule registry (supagate/gates/registry.py: ids, policy names,
enforcement per tier). The SQL in the inputs is re-analysed here with supagate's static
analysis; the program's own verdict is never read. One policy per rule so that
config/<stack>.json sets each rule's enforcement on its own.

Exemptions written as `-- gate:allow <rule> <reason>` in a migration are honoured; the
shadow database, the advisors and the isolation probes run in `supagate check`."""

from pulumi_policy import EnforcementLevel, ResourceValidationPolicy

from supagate.gates.registry import STATIC_RULES
from supagate.offline.resource_types import MIGRATIONS
from supagate.pack.checks import migration_findings


def _policy(rule) -> ResourceValidationPolicy:
    def validate(args, report_violation) -> None:
        if args.resource_type == MIGRATIONS:
            for finding in migration_findings(args.props, rule.id):
                report_violation(finding.sentence())

    return ResourceValidationPolicy(
        name=rule.policy,
        description=f"Blocks {rule.summary} (gate rule {rule.id}).",
        enforcement_level=EnforcementLevel.MANDATORY,
        validate=validate,
        remediation_steps="Each violation ends with its fix. Run `uv run supagate check --stack <stack>` for "
                          "the same findings with the shadow database, the advisors and file:line.",
    )


policies = [_policy(rule) for rule in STATIC_RULES]
