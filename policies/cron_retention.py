"""supabase-cron-require-history-retention (stack): a stack that schedules pg_cron jobs also
purges cron.job_run_details, which pg_cron never cleans."""

from pulumi_policy import EnforcementLevel, StackValidationPolicy

from supagate.pack.ops_checks import cron_retention_violations


def validate(args, report_violation) -> None:
    for finding in cron_retention_violations((r.resource_type, r.props) for r in args.resources):
        report_violation(finding.sentence())


policy = StackValidationPolicy(
    name="supabase-cron-require-history-retention",
    description="pg_cron's run history is purged on a schedule.",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=validate,
    remediation_steps="Keep maintenance.historyRetentionDays (default 14) instead of false.",
)
