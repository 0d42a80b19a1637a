"""supabase-cron-require-gated-sql (stack): a maintenance job runs only SQL the gates have
seen: its command goes through the destructive-change gate like one more migration (a loss
needs `-- gate:approve <reason>` in the job's SQL), and every function it calls is one the
migrations define."""

from pulumi_policy import EnforcementLevel, StackValidationPolicy

from supagate.pack.stack_sql import job_gate_violations


def validate(args, report_violation) -> None:
    for finding in job_gate_violations((r.resource_type, r.props) for r in args.resources):
        report_violation(finding.sentence())


policy = StackValidationPolicy(
    name="supabase-cron-require-gated-sql",
    description="Maintenance jobs lose no data without approval and call only functions the migrations define.",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=validate,
    remediation_steps="Add a WHERE on a column, call a function a migration defines, or approve the loss with "
                      "`-- gate:approve <reason>` in the job's SQL.",
)
