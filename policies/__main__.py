"""The CrossGuard pack: builds the PolicyPack and nothing else (one module per policy;
migration_rules holds the per-rule SQL policies)."""

from pulumi_policy import EnforcementLevel, PolicyPack

import alerts_channel
import alerts_coverage
import alerts_paging
import alerts_proven
import alerts_sql
import auth_jwt_expiry
import auth_password_length
import cron_gated
import cron_jobs
import cron_retention
import database_network
import database_ssl
import flags_guards
import flags_plan
import flags_safety
import functions_jwt
import github_environment
import migration_checksums
import migration_promotion
import migration_rules
import ratelimits_probe
import rls_coverage
import secrets_outputs
import seeds_forbid_prod

PolicyPack(
    name="supabase-platform",
    enforcement_level=EnforcementLevel.MANDATORY,
    policies=[
        migration_checksums.policy,
        *migration_rules.policies,
        migration_promotion.policy,
        rls_coverage.policy,
        database_ssl.policy,
        database_network.policy,
        auth_jwt_expiry.policy,
        auth_password_length.policy,
        functions_jwt.policy,
        secrets_outputs.policy,
        github_environment.policy,
        alerts_channel.policy,
        alerts_paging.policy,
        alerts_sql.policy,
        alerts_proven.policy,
        alerts_coverage.policy,
        cron_jobs.policy,
        cron_gated.policy,
        cron_retention.policy,
        flags_safety.policy,
        flags_plan.policy,
        flags_guards.policy,
        seeds_forbid_prod.policy,
        ratelimits_probe.policy,
    ],
)
