"""supabase-alerts-require-proven-sql (stack): every custom `sql` alert rule is run, before
anything is deployed, behind the boundary it runs behind in production (as
supagate_alert_reader, read-only, under a timeout) in a shadow database built from the
stack's migrations; a rule the boundary refuses, or that cannot be proven, is refused."""

from pulumi_policy import EnforcementLevel, StackValidationPolicy

from supagate.pack.stack_sql import sql_rule_proof_violations


def validate(args, report_violation) -> None:
    for finding in sql_rule_proof_violations((r.resource_type, r.props) for r in args.resources):
        report_violation(finding.sentence())


policy = StackValidationPolicy(
    name="supabase-alerts-require-proven-sql",
    description="Custom SQL alert rules pass their privilege boundary in the shadow database.",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=validate,
    remediation_steps="Grant the tables a rule reads to supagate_alert_reader in a migration; make the rule read "
                      "only, and fast. Each violation names what the database refused.",
)
