"""The SQL gate rules of DESIGN.md, one policy each, on every supabase:Migrations
resource. The SQL in the inputs is re-analysed here with supagate's static analysis; the
program's own verdict is never read. One policy per rule so that config/<stack>.json sets
each rule's enforcement on its own (rls-no-policy stays advisory on prod).

Exemptions written as `-- gate:allow <rule> <reason>` in a migration are honoured; the
shadow database, the advisors and the isolation probes run in `supagate check`."""

from pulumi_policy import EnforcementLevel, ResourceValidationPolicy

from supagate.policy_checks import migration_findings
from supagate.resource_types import MIGRATIONS
from supagate.rules import RULES

# rule id -> policy name (supabase-<area>-<verb>-<what>)
POLICY_NAMES = {
    "rls-missing": "supabase-rls-require-enabled",
    "rls-disabled": "supabase-rls-forbid-disable",
    "rls-no-policy": "supabase-rls-require-policy",
    "policy-permissive-write": "supabase-policies-forbid-public-write",
    "policy-public-read-personal": "supabase-policies-forbid-public-read-personal",
    "policy-user-metadata": "supabase-policies-forbid-user-metadata",
    "view-security-definer": "supabase-views-require-security-invoker",
    "view-auth-users": "supabase-views-forbid-auth-users",
    "matview-exposed": "supabase-matviews-forbid-exposed",
    "function-search-path": "supabase-functions-require-search-path",
    "destructive-unapproved": "supabase-migrations-require-approval",
    "index-not-concurrent": "supabase-indexes-require-concurrently",
}


def _policy(rule: str, name: str) -> ResourceValidationPolicy:
    def validate(args, report_violation) -> None:
        if args.resource_type == MIGRATIONS:
            for message in migration_findings(args.props, rule):
                report_violation(message)

    return ResourceValidationPolicy(
        name=name,
        description=f"Blocks {RULES[rule].summary} (gate rule {rule}).",
        enforcement_level=EnforcementLevel.MANDATORY,
        validate=validate,
        remediation_steps="Each violation ends with its fix. Run `uv run supagate check --stack <stack>` for "
                          "the same findings with the shadow database, the advisors and file:line.",
    )


policies = [_policy(rule, name) for rule, name in POLICY_NAMES.items()]
