"""supabase-stack-require-rls-coverage (stack): every table in a schema the API exposes,
per the project's PostgREST settings as well as the migrations' own list, ends the
migrations with row level security on."""

from pulumi_policy import EnforcementLevel, StackValidationPolicy

from supagate.pack.checks import rls_coverage


def validate(args, report_violation) -> None:
    for finding in rls_coverage((r.resource_type, r.props) for r in args.resources):
        report_violation(finding.sentence())


policy = StackValidationPolicy(
    name="supabase-stack-require-rls-coverage",
    description="Every table in an exposed schema (API settings included) has row level security.",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=validate,
    remediation_steps="Enable RLS with owner policies, or stop exposing the schema in the API settings.",
)
