"""The rule registry: the one place that says which gate rules and pack policies exist,
which pack policy enforces each rule, and how strictly each tier enforces them.

Everything else is built from it: the pack's per-rule policies (policies/migration_rules.py),
the check's verdict, the accepted `gate:allow` ids; a test fails when
policies/config/<stack>.json disagrees with it. Each rule lives in gates/rules/<id>.py."""

from __future__ import annotations

from supagate.findings import ADVISORY, MANDATORY, Finding
from supagate.gates.rule import DEVELOPMENT, PRODUCTION, STAGING, Rule
from supagate.gates.rules import (destructive_unapproved, foreign_table_exposed, function_definer_exposed,
                                  function_search_path, index_not_concurrent, policy_always_true_write,
                                  storage_policy_permissive,
                                  matview_exposed, migration_edited, migration_failed, migration_out_of_order,
                                  not_promoted, policy_permissive_write, policy_public_read_personal,
                                  policy_user_metadata, probe_incomplete, rls_disabled, rls_isolation_leak,
                                  rls_missing, rls_no_policy, shadow_unsupported, view_auth_users, not_analysed, privilege_widened,
                                  view_security_definer)

RULES: dict[str, Rule] = {m.RULE.id: m.RULE for m in (
    rls_missing, rls_disabled, rls_no_policy, policy_permissive_write, policy_public_read_personal,
    policy_user_metadata, view_security_definer, view_auth_users, matview_exposed, function_search_path,
    function_definer_exposed, foreign_table_exposed, storage_policy_permissive, policy_always_true_write,
    destructive_unapproved, index_not_concurrent, migration_edited, migration_out_of_order, not_promoted,
    migration_failed, rls_isolation_leak, probe_incomplete, shadow_unsupported, not_analysed, privilege_widened)}
# Judged only on migrations not yet applied (or after the stack's migrations.baseline): an
# applied file can no longer be changed (approving it would edit it; migration-edited blocks that).
PER_STATEMENT_RULES = ("destructive-unapproved", "index-not-concurrent")
# Rules from other tools are namespaced: `advisor/<lint name>`, `squawk/<rule name>`.
EXTERNAL_PREFIXES = ("advisor/", "squawk/")

# Pack policies that enforce a setting rather than a gate rule: (production, staging, development).
SETTING_POLICIES: dict[str, tuple[str, str, str]] = {
    "supabase-migrations-verify-checksums": (MANDATORY, MANDATORY, MANDATORY),
    "supabase-secrets-require-secret-outputs": (MANDATORY, MANDATORY, MANDATORY),
    "supabase-stack-require-rls-coverage": (MANDATORY, ADVISORY, ADVISORY),
    "supabase-database-require-ssl": (MANDATORY, ADVISORY, ADVISORY),
    "supabase-database-require-network-restrictions": (MANDATORY, ADVISORY, ADVISORY),
    "supabase-auth-limit-jwt-expiry": (MANDATORY, ADVISORY, ADVISORY),
    "supabase-auth-require-password-length": (MANDATORY, ADVISORY, ADVISORY),
    "supabase-functions-require-jwt": (MANDATORY, ADVISORY, ADVISORY),
    "supabase-github-protect-environment": (MANDATORY, ADVISORY, ADVISORY),
    "supabase-alerts-require-channel": (MANDATORY, MANDATORY, ADVISORY),
    "supabase-alerts-require-paging-channel": (MANDATORY, ADVISORY, ADVISORY),
    "supabase-alerts-sql-read-only": (MANDATORY, MANDATORY, MANDATORY),
    "supabase-alerts-require-proven-sql": (MANDATORY, MANDATORY, MANDATORY),
    "supabase-alerts-require-coverage": (MANDATORY, ADVISORY, ADVISORY),
    "supabase-cron-schedule-valid": (MANDATORY, MANDATORY, MANDATORY),
    "supabase-cron-require-gated-sql": (MANDATORY, MANDATORY, MANDATORY),
    "supabase-cron-require-history-retention": (MANDATORY, ADVISORY, ADVISORY),
    "supabase-flags-safety-always-on": (MANDATORY, MANDATORY, MANDATORY),
    "supabase-flags-plan-valid": (MANDATORY, MANDATORY, ADVISORY),
    "supabase-flags-guards-exist": (MANDATORY, MANDATORY, ADVISORY),
    "supabase-seeds-forbid-prod": (MANDATORY, MANDATORY, MANDATORY),
    "supabase-ratelimits-require-probe": (MANDATORY, ADVISORY, ADVISORY),
}
_TIER_INDEX = {PRODUCTION: 0, STAGING: 1, DEVELOPMENT: 2}
# The rules the pack re-analyses from the SQL in the Migrations inputs, one policy each.
STATIC_RULES = tuple(r for r in RULES.values() if r.policy and (
    r.end_state is not None or r.id in ("destructive-unapproved", "index-not-concurrent")))


# A pull request's preview of prod cannot require what only happens after the merge (staging
# deploys on merge): these are advisory there, saying they will be required at deploy.
DEPLOY_ONLY = ("supabase-migrations-require-staging-first",)
PHASES = ("deploy", "pull-request")


def policy_levels(tier: str, phase: str = "deploy") -> dict[str, str]:
    """Every pack policy -> its enforcement level on `tier`, at a deploy or a pull request's preview."""
    levels = {r.policy: r.enforcement(tier) for r in RULES.values() if r.policy}
    levels.update({name: tiers[_TIER_INDEX[tier]] for name, tiers in SETTING_POLICIES.items()})
    if phase == "pull-request":
        levels.update({name: ADVISORY for name in DEPLOY_ONLY})
    return levels


def enforcement_for(finding: Finding, tier: str) -> str:
    rule = RULES.get(finding.rule)
    if rule is not None:
        return rule.enforcement(tier)
    if finding.rule.startswith("advisor/") and tier == PRODUCTION and finding.level == "ERROR":
        return MANDATORY
    return ADVISORY


def known_rule(rule: str) -> bool:
    return rule in RULES or rule.startswith(EXTERNAL_PREFIXES)
