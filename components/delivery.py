"""Delivery on GitHub (pulumi-github): the stack's deployment environment with its
reviewers, rules and secrets; on prod also the `main` ruleset and the repository secrets
for previews and the health workflow. The generated workflows are committed in the
repository itself (`supagate workflows --write`) and a required check keeps them in step:
a stack that wrote them to `main` would need to bypass the ruleset it creates.

Each stack owns its own environment (staging -> `staging`, prod -> `production`); the
repository-wide pieces (ruleset, workflow files, the Pulumi token for previews) belong to
the prod stack only, so the two stacks never fight over one resource.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pulumi
import pulumi_github as github

from supagate.config.models import GithubSettings

ENVIRONMENTS = {"staging": "staging", "production": "production"}  # by tier; development: the stack's name


@dataclass
class DeliveryArgs:
    stack: str
    tier: str  # production, staging or development
    github: GithubSettings
    project_ref: str
    pulumi_stack: str  # org/project/stack, as the workflows name it
    environment_secrets: dict[str, pulumi.Input[str]]  # name -> Pulumi secret
    pulumi_access_token: pulumi.Input[str] | None = None  # repository secret for previews (prod only)
    verify_db_url: pulumi.Input[str] | None = None  # a read-only role, for the health workflow (prod only)
    # Alert channel URLs and keys the health workflow sends with (prod only), by name.
    alert_secrets: dict[str, pulumi.Input[str]] = field(default_factory=dict)
    token: pulumi.Input[str] | None = None  # GitHub token; else the provider reads GITHUB_TOKEN


class Delivery(pulumi.ComponentResource):
    def __init__(self, name: str, args: DeliveryArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("supabase-platform:delivery:Delivery", name, None, opts)
        owner, repository = args.github.repository.split("/", 1)
        provider = github.Provider(f"{name}-github", owner=owner, token=args.token,
                                   opts=pulumi.ResourceOptions(parent=self))
        child = pulumi.ResourceOptions(parent=self, provider=provider)
        environment_name = ENVIRONMENTS.get(args.tier, args.stack)
        settings = args.github.environment
        self.environment = github.RepositoryEnvironment(
            f"{name}-environment", repository=repository, environment=environment_name,
            reviewers=[_reviewers(settings.reviewers, child)] if settings.reviewers else [],
            prevent_self_review=settings.prevent_self_review,
            wait_timer=settings.wait_timer_minutes,
            can_admins_bypass=settings.admins_bypass,
            deployment_branch_policy=github.RepositoryEnvironmentDeploymentBranchPolicyArgs(
                protected_branches=False, custom_branch_policies=True),
            opts=child)
        after_environment = pulumi.ResourceOptions(parent=self, provider=provider, depends_on=[self.environment])
        for branch in settings.deployment_branches:
            github.RepositoryEnvironmentDeploymentPolicy(
                f"{name}-branch-{branch}", repository=repository, environment=environment_name,
                branch_pattern=branch, opts=after_environment)
        for tag in settings.deployment_tags:
            github.RepositoryEnvironmentDeploymentPolicy(
                f"{name}-tag-{tag.replace('*', 'any')}", repository=repository, environment=environment_name,
                tag_pattern=tag, opts=after_environment)
        for secret_name, value in sorted(args.environment_secrets.items()):
            github.ActionsEnvironmentSecret(
                f"{name}-secret-{secret_name.lower()}", repository=repository, environment=environment_name,
                secret_name=secret_name, value=pulumi.Output.secret(value), opts=after_environment)
        for variable, value in (("SUPABASE_PROJECT_REF", args.project_ref), ("PULUMI_STACK", args.pulumi_stack)):
            github.ActionsEnvironmentVariable(
                f"{name}-variable-{variable.lower()}", repository=repository, environment=environment_name,
                variable_name=variable, value=value, opts=after_environment)
        if args.tier == "production":
            self._repository_rules(name, repository, args, child)
        self.register_outputs({"environment": environment_name})

    def _repository_rules(self, name: str, repository: str, args: DeliveryArgs,
                          child: pulumi.ResourceOptions) -> None:
        github.RepositoryRuleset(
            f"{name}-main-ruleset", repository=repository, name="main", target="branch", enforcement="active",
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
            opts=child)
        for secret_name, value in (("PULUMI_ACCESS_TOKEN", args.pulumi_access_token),
                                   ("PROD_VERIFY_DB_URL", args.verify_db_url), *sorted(args.alert_secrets.items())):
            if value is not None:
                github.ActionsSecret(f"{name}-secret-{secret_name.lower()}", repository=repository,
                                     secret_name=secret_name, value=pulumi.Output.secret(value), opts=child)


def _reviewers(names: tuple[str, ...], opts: pulumi.ResourceOptions) -> github.RepositoryEnvironmentReviewerArgs:
    """`org/team` entries are teams, the others users; GitHub wants their numeric ids."""
    invoke = pulumi.InvokeOptions(provider=opts.provider, parent=opts.parent)
    teams = [github.get_team_output(slug=n.split("/", 1)[1], opts=invoke).id.apply(int) for n in names if "/" in n]
    users = [github.get_user_output(username=n, opts=invoke).id.apply(int) for n in names if "/" not in n]
    return github.RepositoryEnvironmentReviewerArgs(teams=teams, users=users)

