"""The CrossGuard pack: builds the PolicyPack and nothing else (one module per policy;
migration_rules holds the per-rule SQL policies)."""

from pulumi_policy import EnforcementLevel, PolicyPack

import auth_jwt_expiry
import auth_password_length
import database_network
import database_ssl
import functions_jwt
import github_environment
import migration_checksums
import migration_promotion
import migration_rules
import rls_coverage
import secrets_outputs

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
    ],
)
