"""The CrossGuard pack: builds the PolicyPack and nothing else (one module per policy)."""

from pulumi_policy import EnforcementLevel, PolicyPack

import migration_checksums

PolicyPack(
    name="supabase-platform",
    enforcement_level=EnforcementLevel.ADVISORY,
    policies=[migration_checksums.policy],
)
