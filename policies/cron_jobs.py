"""supabase-cron-schedule-valid: a pg_cron job's schedule parses (five fields, UTC), and a
VACUUM or CONCURRENTLY command is its job's only statement (pg_cron would run several as
one transaction, which those commands refuse)."""

from pulumi_policy import EnforcementLevel, ResourceValidationPolicy

from supagate.offline.resource_types import CRON_JOB
from supagate.pack.ops_checks import cron_job_violations


def validate(args, report_violation) -> None:
    if args.resource_type == CRON_JOB:
        for finding in cron_job_violations(args.props):
            report_violation(finding.sentence())


policy = ResourceValidationPolicy(
    name="supabase-cron-schedule-valid",
    description="pg_cron schedules are valid and VACUUM-like commands run alone.",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=validate,
    remediation_steps="Fix the schedule; give VACUUM or CONCURRENTLY commands a job of their own.",
)
