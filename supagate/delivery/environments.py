"""Where each credential the workflows read lives: a GitHub environment, never the repository.

A job sees an environment's secrets only when it names the environment, and each
environment's deployment branch policy admits only `main` (production also the release
tags, which only release managers may create), so no pull-request ref can reach them,
not even a workflow the branch itself adds. Repository secrets would reach any
same-repository branch. The Delivery component creates what this module names; the
workflow generator reads the secrets from here; tests/delivery checks both.
"""

from __future__ import annotations

STAGING = "staging"
PRODUCTION = "production"
# The health workflow runs every few minutes with nobody there to approve a run, so its
# read-only URL and the alert channels' secrets live in an environment of their own: main
# only, no reviewers, nothing in it that can write to prod.
PRODUCTION_HEALTH = "production-health"
BY_TIER = {"staging": STAGING, "production": PRODUCTION}  # development: the stack's own name

# Each deployment environment: the stack's database URL, its Management API token and the
# Pulumi token its deploy jobs run with (a token that can decrypt only that stack).
DEPLOY_SECRETS = ("SUPABASE_DB_URL", "SUPABASE_ACCESS_TOKEN", "PULUMI_ACCESS_TOKEN")
VERIFY_DB_URL = "PROD_VERIFY_DB_URL"  # in PRODUCTION_HEALTH, with the alert channels' secrets

# The release tags deploy-prod runs for; the prod stack's tag ruleset covers them.
RELEASE_TAGS = ("v*",)


def environment_for(tier: str, stack: str) -> str:
    return BY_TIER.get(tier, stack)


def held_secrets(prod_alert_secrets: set[str] | frozenset[str] = frozenset()) -> dict[str, set[str]]:
    """Environment -> the secrets the stacks may put in it (components/delivery.py)."""
    return {STAGING: set(DEPLOY_SECRETS), PRODUCTION: set(DEPLOY_SECRETS),
            PRODUCTION_HEALTH: {VERIFY_DB_URL, *prod_alert_secrets}}
