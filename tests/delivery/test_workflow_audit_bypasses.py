"""The third red-team pass against `supagate workflows` (supagate/delivery/workflow_audit.py):
each workflow it used to pass, now refused, next to an honest twin that still passes.

Every attack is the generated workflows plus one file or one change, as a contributor with
write access would push it in a pull request."""

from __future__ import annotations

import pytest
import yaml

from supagate.delivery.environments import kept_to_main
from supagate.delivery.workflows import ACTIONS
from tests.delivery.test_workflow_audit import CHECKOUT, FILES, KEPT, PROD, STAGING, _step, changed, problems, \
    with_file

RUNS_ON = "ubuntu-22.04"


def _workflow(on, job: dict) -> dict:
    return {"on": on, "jobs": {"x": {"runs-on": RUNS_ON, **job}}}


def _reads(secret: str) -> dict:
    return {"steps": [{"run": "env", "env": {"T": secret}}]}


def _in(environment: str, secret: str = "${{ secrets.SUPABASE_DB_URL }}") -> dict:
    return {"environment": environment, **_reads(secret)}


def _before_the_check(d: dict, step: dict) -> None:
    d["jobs"]["release-on-main"]["steps"].insert(1, step)


def _deploy_env(d: dict) -> dict:
    return next(s for s in d["jobs"]["deploy"]["steps"] if s.get("with", {}).get("command") == "up")["env"]


def _upload(d: dict) -> dict:
    return next(s for s in d["jobs"]["deploy"]["steps"] if s.get("uses", "").startswith("actions/upload-artifact@"))


UNNAMED_PR = {"on": "pull_request", "jobs": {"t": {"runs-on": RUNS_ON, "steps": [{"run": "echo hi > payload.sh"}]}}}

ATTACKS = {
    # Context and secret names are case-insensitive in GitHub's expressions.
    "Secrets.X": (with_file("x.yml", _workflow("pull_request", _reads("${{ Secrets.PULUMI_ACCESS_TOKEN }}"))),
                  "x.yml: job x: a pull request can start it and it reads PULUMI_ACCESS_TOKEN"),
    "SECRETS['x'] in a job's env": (with_file("x.yml", _workflow("pull_request", {
        "env": {"T": "${{ SECRETS['supabase_db_url'] }}"}, "steps": [{"run": "env"}]})),
        "x.yml: job x: a pull request can start it and it reads SUPABASE_DB_URL"),
    "a '}}' inside a string ends no expression": (with_file("x.yml", _workflow("pull_request", _reads(
        "${{ format('}}{0}', secrets.PULUMI_ACCESS_TOKEN) }}"))),
        "x.yml: job x: a pull request can start it and it reads PULUMI_ACCESS_TOKEN"),
    # Events whose code or input nobody reviewed.
    "push to any branch": (with_file("x.yml", _workflow("push", _in("staging"))),
                           "x.yml: job x: a push to any branch can start it"),
    "push to branches other than main": (with_file("x.yml", _workflow(
        {"push": {"branches": ["main", "release/**"]}}, _in("staging"))), "x.yml: job x: a push to any branch"),
    "push with branches-ignore": (with_file("x.yml", _workflow(
        {"push": {"branches-ignore": ["dependabot/**"]}}, _in("staging"))), "x.yml: job x: a push to any branch"),
    "issues": (with_file("x.yml", _workflow({"issues": {"types": ["opened"]}}, _in(
        "production-health", "${{ secrets.PROD_VERIFY_DB_URL }}"))), "x.yml: job x: issues can start it"),
    "issue_comment": (with_file("x.yml", _workflow("issue_comment", _in("staging"))),
                      "x.yml: job x: issue_comment can start it"),
    "discussion": (with_file("x.yml", _workflow(["discussion"], _in("staging"))),
                   "x.yml: job x: discussion can start it"),
    "merge_group (the queue's unmerged code)": (with_file("x.yml", _workflow("merge_group", _in("staging"))),
                                                "x.yml: job x: a pull request can start it"),
    # GitHub names a workflow without `name:` by its path; and any pull request can add a
    # workflow of any name, so naming a main-only workflow proves nothing either.
    "workflow_run naming an unnamed pull-request workflow by its path": ({**with_file("x.yml", _workflow(
        {"workflow_run": {"workflows": [".github/workflows/unnamed.yml"], "types": ["completed"]}},
        _in("production-health", "${{ secrets.PROD_VERIFY_DB_URL }}"))), "unnamed.yml": yaml.safe_dump(UNNAMED_PR)},
        "x.yml: job x: workflow_run can start it"),
    "workflow_run naming a main-only workflow": (with_file("x.yml", _workflow(
        {"workflow_run": {"workflows": ["deploy staging"], "branches": ["main"]}}, _in("staging"))),
        "x.yml: job x: workflow_run can start it"),
    # workflow_dispatch runs any branch: only an environment kept to main stops that branch.
    "workflow_dispatch into an environment that admits another branch": (
        with_file("x.yml", _workflow("workflow_dispatch", _in("staging"))),
        "x.yml: job x: workflow_dispatch can run it from any branch or tag, and environment staging admits"),
    "workflow_dispatch into an environment no stack creates": (
        with_file("x.yml", _workflow("workflow_dispatch", _in("ops"))),
        "x.yml: job x: workflow_dispatch can run it from any branch or tag, and environment ops admits"),
    # A reusable workflow called by its full name may be this repository's at any commit.
    "a reusable workflow called by full name from a pull request": (with_file("x.yml", {
        "on": "pull_request", "jobs": {"x": {"uses": "momentum-health/supabase-platform/.github/workflows/"
                                                    "deploy-prod.yml@" + "0" * 40}}}),
        "x.yml: job x: a pull request can start it and it calls momentum-health/supabase-platform"),
    "a callee reached by full name keeps its caller's reach": ({**with_file("x.yml", {
        "on": "pull_request", "jobs": {"x": {"uses": "momentum-health/supabase-platform/.github/workflows/"
                                                    "called.yml@" + "0" * 40}}}),
        "called.yml": yaml.safe_dump({"on": "workflow_call", "jobs": {"y": {"runs-on": RUNS_ON, **_in(
            "production-health", "${{ secrets.PROD_VERIFY_DB_URL }}")}}})},
        "called.yml: job y: a pull request can start it (through x.yml) and it names environment"),
    # Local composite actions: read, pinned, or refused.
    "a local action the audit cannot read": (changed("deploy-staging.yml", lambda d: d["jobs"]["deploy"][
        "steps"].append({"uses": "./.github/actions/evil"})),
        "deploy-staging.yml: job deploy: uses ./.github/actions/evil, whose action.yml the audit cannot read"),
    "a local action outside the repository": (changed("deploy-staging.yml", lambda d: d["jobs"]["deploy"][
        "steps"].append({"uses": "./../../tmp/evil"})), "deploy-staging.yml: job deploy: uses ./../../tmp/evil, whose"),
    "a local action that is not YAML": (changed("deploy-staging.yml", lambda d: d["jobs"]["deploy"][
        "steps"].append({"uses": "./.github/actions/broken"})), "deploy-staging.yml: job deploy: uses ./.github/acti"),
    "a local action with an action pinned by tag": (changed("deploy-staging.yml", lambda d: d["jobs"]["deploy"][
        "steps"].append({"uses": "./.github/actions/nested"})),
        "deploy-staging.yml: job deploy: uses astral-sh/setup-uv@v6 (in ./.github/actions/tagged) without a full"),
    # The on-main check made a no-op.
    "the check's step run by `true`": (changed("deploy-prod.yml", lambda d: _step(
        d["jobs"]["release-on-main"], "Check the release").update(shell="true {0}")),
        "deploy-prod.yml: job deploy: deploys to production without first needing"),
    "the check job's default shell": (changed("deploy-prod.yml", lambda d: d["jobs"]["release-on-main"].update(
        defaults={"run": {"shell": "true {0}"}})), "deploy-prod.yml: job deploy: deploys to production without"),
    "the workflow's default shell": (changed("deploy-prod.yml", lambda d: d.update(
        defaults={"run": {"shell": "true {0}"}})), "deploy-prod.yml: job deploy: its workflow sets defaults"),
    "BASH_ENV in the workflow's env": (changed("deploy-prod.yml", lambda d: d.update(env={"BASH_ENV": "./x.sh"})),
                                       "deploy-prod.yml: job deploy: its workflow sets env"),
    "a step that fakes origin/main first": (changed("deploy-prod.yml", lambda d: _before_the_check(
        d, {"run": "git update-ref refs/remotes/origin/main HEAD"})),
        "deploy-prod.yml: job deploy: deploys to production without first needing"),
    "the check in an attacker's container": (changed("deploy-prod.yml", lambda d: d["jobs"]["release-on-main"].update(
        container="ghcr.io/attacker/git@sha256:" + "0" * 64)), "deploy-prod.yml: job deploy: deploys to production"),
    "another repository checked out": (changed("deploy-prod.yml", lambda d: d["jobs"]["release-on-main"]["steps"][0][
        "with"].update(repository="attacker/fork")), "deploy-prod.yml: job deploy: deploys to production without"),
    "the deploy checks out another branch after the check": (changed("deploy-prod.yml", lambda d: d["jobs"][
        "deploy"]["steps"][0].setdefault("with", {}).update(ref="feature")),
        "deploy-prod.yml: job deploy: checks out ref 'feature' in a job of environment production"),
    "environment Production (names ignore case) with no check": (changed("deploy-prod.yml", lambda d: (
        d["jobs"]["deploy"].pop("needs"), d["jobs"]["deploy"].update(environment="Production"))),
        "deploy-prod.yml: job deploy: deploys to production without first needing"),
    # What GitHub would read differently from the audit.
    "a repeated `on` key": ({**FILES, "x.yml": "on: pull_request\non: push\njobs:\n  x:\n    runs-on: x\n"
                                               "    environment: staging\n    steps: [{run: env}]\n"},
                            "x.yml: cannot be read (key 'on' appears twice"),
    "an environment named by an expression": (with_file("x.yml", _workflow({"push": {"branches": ["main"]}}, {
        "environment": {"name": "${{ 'prod' }}uction"}, "steps": [{"run": "env"}]})),
        "x.yml: job x: names its environment with an expression"),
    # S1: what leaves the deploy job, and to whom it is encrypted.
    "the plain dump uploaded": (changed("deploy-prod.yml", lambda d: _upload(d)["with"].update(path="backups/")),
                                "deploy-prod.yml: job deploy: uploads backups/: an artifact is readable"),
    "a .dump uploaded": (changed("deploy-prod.yml", lambda d: _upload(d)["with"].update(
        path="backups/*.dump\nbackups/*.rows.json")), "deploy-prod.yml: job deploy: uploads backups/*.dump:"),
    "recipients written in the workflow": (changed("deploy-prod.yml", lambda d: _deploy_env(d).update(
        SNAPSHOT_RECIPIENTS="age1" + "q" * 58)), "deploy-prod.yml: job deploy: sets SNAPSHOT_RECIPIENTS to 'age1"),
    "recipients with a fallback of the attacker's": (changed("deploy-prod.yml", lambda d: _deploy_env(d).update(
        SNAPSHOT_RECIPIENTS="${{ secrets.SNAPSHOT_RECIPIENTS || 'age1qqq' }}")),
        "deploy-prod.yml: job deploy: sets SNAPSHOT_RECIPIENTS to"),
    "recipients read from a file of the repository": (changed("deploy-prod.yml", lambda d: (
        _deploy_env(d).pop("SNAPSHOT_RECIPIENTS"), d["jobs"]["deploy"]["steps"].insert(3, {
            "run": 'echo "SNAPSHOT_RECIPIENTS=$(cat backups/keys.txt)" >> "$GITHUB_ENV"'}))),
        "deploy-prod.yml: job deploy: a run script touches SNAPSHOT_RECIPIENTS"),
    "an encrypted upload without the environment's recipients": (changed("deploy-prod.yml", lambda d: _deploy_env(
        d).pop("SNAPSHOT_RECIPIENTS")), "deploy-prod.yml: job deploy: uploads age-encrypted files but takes no"),
}


@pytest.mark.parametrize("files, expected", list(ATTACKS.values()), ids=list(ATTACKS))
def test_each_bypass_is_refused(files, expected):
    loose = STAGING.model_copy(update={"github": STAGING.github.model_copy(update={
        "environment": STAGING.github.environment.model_copy(update={"deployment_branches": ("main", "develop")})})})
    found = problems(files, kept_to_main(loose, PROD))  # staging here also deploys from develop
    assert any(p.startswith(expected) for p in found), found


def test_the_stacks_environments_are_kept_to_main():
    assert KEPT == {"staging", "production", "production-health"}
    assert problems(FILES, set()) != []  # without knowing that, dispatch and tag jobs are refused


HONEST = {
    "a literal 'secrets' is no context": with_file("x.yml", _workflow("pull_request", _reads(
        "${{ github.event.label.name == 'secrets' }}"))),
    "a held secret named in lower case": changed("deploy-staging.yml", lambda d: d["jobs"]["deploy"]["env"].update(
        URL="${{ secrets.supabase_db_url }}")),
    "the recipients' expression in another case": changed("deploy-prod.yml", lambda d: _deploy_env(d).update(
        SNAPSHOT_RECIPIENTS="${{ SECRETS.snapshot_recipients }}")),
    "push to main only": with_file("x.yml", _workflow({"push": {"branches": ["main"], "paths": ["supabase/**"]}},
                                                      _in("staging"))),
    "workflow_dispatch into an environment kept to main": with_file("x.yml", _workflow("workflow_dispatch",
                                                                                      _in("staging"))),
    "a reusable workflow without an environment, from a pull request": {
        **with_file("x.yml", {"on": "pull_request", "jobs": {"x": {"uses": "./.github/workflows/lint.yml"}}}),
        "lint.yml": yaml.safe_dump({"on": "workflow_call", "jobs": {"y": {"runs-on": RUNS_ON, "steps": [
            {"uses": CHECKOUT}, {"run": "make lint"}]}}})},
    "a local composite action whose steps are pinned": changed("deploy-staging.yml", lambda d: d["jobs"]["deploy"][
        "steps"].append({"uses": "./.github/actions/lint"})),
    "a test report uploaded from a job with no environment": with_file("x.yml", _workflow("pull_request", {
        "steps": [{"uses": ACTIONS["upload-artifact"].ref, "with": {"name": "report", "path": "report.xml"}}]})),
}


@pytest.mark.parametrize("files", list(HONEST.values()), ids=list(HONEST))
def test_each_honest_twin_passes(files):
    assert problems(files) == []
