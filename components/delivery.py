"""Delivery on GitHub (pulumi-github): the stack's deployment environment with its
reviewers, rules and secrets; on prod also the `main` ruleset, the release-tag ruleset and
the health workflow's environment. The generated workflows are committed in the
repository itself (`supagate workflows --write`) and a required check keeps them in step:
a stack that wrote them to `main` would need to bypass the ruleset it creates.

No credential is a repository secret (any same-repository branch could read it): each
lives in an environment whose branch policy admits only `main` and, for production, the
release tags only release managers can create (supagate/delivery/environments.py).

Each stack owns its own environment (staging -> `staging`, prod -> `production`); the
repository-wide pieces (rulesets, the health environment) belong to the prod stack only,
so the two stacks never fight over one resource.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pulumi
import pulumi_github as github

from supagate.config.models import GithubSettings
from supagate.delivery.environments import PRODUCTION_HEALTH, RELEASE_TAGS, environment_for


@dataclass
class DeliveryArgs:
    stack: str
    tier: str  # production, staging or development
    github: GithubSettings
    project_ref: str
    pulumi_stack: str  # org/project/stack, as the workflows name it
    environment_secrets: dict[str, pulumi.Input[str]]  # name -> Pulumi secret, in the stack's environment
    # prod only: the health workflow's read-only URL and alert channel secrets, by name.
    health_secrets: dict[str, pulumi.Input[str]] = field(default_factory=dict)
    token: pulumi.Input[str] | None = None  # GitHub token; else the provider reads GITHUB_TOKEN


class Delivery(pulumi.ComponentResource):
    def __init__(self, name: str, args: DeliveryArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("supabase-platform:delivery:Delivery", name, None, opts)
        owner, repository = args.github.repository.split("/", 1)
        provider = github.Provider(f"{name}-github", owner=owner, token=args.token,
                                   opts=pulumi.ResourceOptions(parent=self))
        self._child = pulumi.ResourceOptions(parent=self, provider=provider)
        self._repository = repository
        environment_name = environment_for(args.tier, args.stack)
        settings = args.github.environment
        self.environment = self._environment(
            name, environment_name, args.environment_secrets, settings.deployment_branches,
            settings.deployment_tags, reviewers=settings.reviewers, prevent_self_review=settings.prevent_self_review,
            wait_timer=settings.wait_timer_minutes, admins_bypass=settings.admins_bypass)
        for variable, value in (("SUPABASE_PROJECT_REF", args.project_ref), ("PULUMI_STACK", args.pulumi_stack)):
            github.ActionsEnvironmentVariable(
                f"{name}-variable-{variable.lower()}", repository=repository, environment=environment_name,
                variable_name=variable, value=value,
                opts=pulumi.ResourceOptions.merge(self._child, pulumi.ResourceOptions(depends_on=[self.environment])))
        if args.tier == "production":
            self._repository_rules(name, args)
            # Runs every few minutes unattended: main only, no reviewers, a read-only URL.
            self._environment(f"{name}-health", PRODUCTION_HEALTH, args.health_secrets, ("main",), ())
        self.register_outputs({"environment": environment_name})

    def _environment(self, name: str, environment: str, secrets: dict[str, pulumi.Input[str]],
                     branches: tuple[str, ...], tags: tuple[str, ...], *, reviewers: tuple[str, ...] = (),
                     prevent_self_review: bool = True, wait_timer: int = 0,
                     admins_bypass: bool = False) -> github.RepositoryEnvironment:
        """An environment that deploys only from the named branches and tags, with its secrets."""
        created = github.RepositoryEnvironment(
            f"{name}-environment", repository=self._repository, environment=environment,
            reviewers=[_reviewer_ids(reviewers, self._child)] if reviewers else [],
            prevent_self_review=prevent_self_review, wait_timer=wait_timer, can_admins_bypass=admins_bypass,
            deployment_branch_policy=github.RepositoryEnvironmentDeploymentBranchPolicyArgs(
                protected_branches=False, custom_branch_policies=True),
            opts=self._child)
        after = pulumi.ResourceOptions.merge(self._child, pulumi.ResourceOptions(depends_on=[created]))
        for branch in branches:
            github.RepositoryEnvironmentDeploymentPolicy(
                f"{name}-branch-{branch}", repository=self._repository, environment=environment,
                branch_pattern=branch, opts=after)
        for tag in tags:
            github.RepositoryEnvironmentDeploymentPolicy(
                f"{name}-tag-{tag.replace('*', 'any')}", repository=self._repository, environment=environment,
                tag_pattern=tag, opts=after)
        for secret_name, value in sorted(secrets.items()):
            github.ActionsEnvironmentSecret(
                f"{name}-secret-{secret_name.lower()}", repository=self._repository, environment=environment,
                secret_name=secret_name, value=pulumi.Output.secret(value), opts=after)
        return created

    def _repository_rules(self, name: str, args: DeliveryArgs) -> None:
        github.RepositoryRuleset(
            f"{name}-main-ruleset", repository=self._repository, name="main", target="branch", enforcement="active",
            bypass_actors=[],  # nobody, admins included, skips the rules
            conditions=github.RepositoryRulesetConditionsArgs(
                ref_name=github.RepositoryRulesetConditionsRefNameArgs(includes=["~DEFAULT_BRANCH"], excludes=[])),
            rules=github.RepositoryRulesetRulesArgs(
                deletion=True, non_fast_forward=True,
                pull_request=github.RepositoryRulesetRulesPullRequestArgs(
                    required_approving_review_count=1, dismiss_stale_reviews_on_push=True,
                    require_last_push_approval=True, required_review_thread_resolution=True),
                required_status_checks=github.RepositoryRulesetRulesRequiredStatusChecksArgs(
                    strict_required_status_checks_policy=True,
                    required_checks=[github.RepositoryRulesetRulesRequiredStatusChecksRequiredCheckArgs(context=c)
                                     for c in args.github.required_checks])),
            opts=self._child)
        # A release tag deploys to production: only release managers create, move or delete
        # one (every pattern the production environment deploys from, and deploy-prod's own).
        managers = args.github.release_managers or args.github.environment.reviewers
        patterns = sorted({*RELEASE_TAGS, *args.github.environment.deployment_tags})
        ids = _actor_ids(managers, self._child)
        github.RepositoryRuleset(
            f"{name}-release-tags", repository=self._repository, name="release tags", target="tag",
            enforcement="active",
            bypass_actors=[github.RepositoryRulesetBypassActorArgs(actor_id=actor_id, actor_type=kind,
                                                                   bypass_mode="always")
                           for kind in ("Team", "User") for actor_id in ids[kind]],
            conditions=github.RepositoryRulesetConditionsArgs(ref_name=github.RepositoryRulesetConditionsRefNameArgs(
                includes=[f"refs/tags/{pattern}" for pattern in patterns], excludes=[])),
            rules=github.RepositoryRulesetRulesArgs(creation=True, update=True, deletion=True, non_fast_forward=True),
            opts=self._child)


def _actor_ids(names: tuple[str, ...], opts: pulumi.ResourceOptions) -> dict[str, list[pulumi.Output[int]]]:
    """`org/team` entries are teams, the others users; GitHub wants their numeric ids."""
    invoke = pulumi.InvokeOptions(provider=opts.provider, parent=opts.parent)
    return {"Team": [github.get_team_output(slug=n.split("/", 1)[1], opts=invoke).id.apply(int)
                     for n in names if "/" in n],
            "User": [github.get_user_output(username=n, opts=invoke).id.apply(int) for n in names if "/" not in n]}


def _reviewer_ids(names: tuple[str, ...], opts: pulumi.ResourceOptions) -> github.RepositoryEnvironmentReviewerArgs:
    ids = _actor_ids(names, opts)
    return github.RepositoryEnvironmentReviewerArgs(teams=ids["Team"], users=ids["User"])
