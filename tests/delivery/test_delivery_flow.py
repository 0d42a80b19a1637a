"""The generated delivery flow, walked: a pull request that adds a migration passes every
required check; `deploy-prod` before staging applied it is blocked; once staging applied
it, the same deploy passes. Each step runs what the generated workflow runs, with the pack
config that workflow names: the pull request's previews run `supagate plan` exactly as
pr.yml says (offline, no credentials); `supagate plan` stands in for `pulumi up`."""

from __future__ import annotations

import json
import shlex
import shutil
from pathlib import Path

import pytest
import yaml

from supagate.config.loading import settings_from_stack_file
from supagate.delivery.workflows import rendered
from tests.cli.test_cli import supagate
from tests.conftest import APP, PROJECT

NEW_MIGRATION = ("20991231000000_step_goals.sql",
                 "create table public.step_goals (id bigint primary key generated always as identity,\n"
                 "  user_id uuid not null references auth.users (id) on delete cascade, daily_steps int not null);\n"
                 "alter table public.step_goals enable row level security;\n"
                 "create policy \"own goals\" on public.step_goals for all to authenticated\n"
                 "  using ((select auth.uid()) = user_id) with check ((select auth.uid()) = user_id);\n")


@pytest.fixture(scope="module")
def project(tmp_path_factory, pack_python):
    """A copy of this project with a pull request's new migration, and the pack's venv."""
    root = tmp_path_factory.mktemp("flow") / "project"
    root.mkdir()
    shutil.copytree(PROJECT, root, dirs_exist_ok=True, symlinks=True)
    (root / "supabase" / "migrations" / NEW_MIGRATION[0]).write_text(NEW_MIGRATION[1])
    return root, {"SUPAGATE_PACK_VENV": str(Path(pack_python).parent.parent)}


def _workflows() -> dict[str, dict]:
    files = rendered(settings_from_stack_file("staging", APP / "Pulumi.staging.yaml"),
                     settings_from_stack_file("prod", APP / "Pulumi.prod.yaml"))
    return {name: yaml.safe_load(text) for name, text in files.items()}


def _pulumi_step(job: dict) -> dict:
    return next(s["with"] for s in job["steps"] if s.get("with", {}).get("command") in ("preview", "up"))


def _staging_outputs(root: Path, path: Path, *, with_new: bool) -> Path:
    """`pulumi stack output --json --stack staging`: what staging has applied and runs."""
    from supagate.migrations.files import load_migrations
    from supagate.supabase_api.edge_functions import discover

    migrations = [m for m in load_migrations(root / "supabase" / "migrations")
                  if with_new or m.filename != NEW_MIGRATION[0]]
    functions = discover(root / "supabase", settings_from_stack_file("staging", root / "Pulumi.staging.yaml").functions)
    path.write_text(json.dumps({"migrationChecksums": {m.version: m.checksum for m in migrations},
                                "functionHashes": {f.slug: f.content_sha256 for f in functions}}))
    return path


def _plan(root: Path, env: dict, stack: str, config: str, outputs: Path | None):
    args = ["plan", "--project", str(root), "--stack", stack, "--policy-pack-config", str(root / config),
            "--format", "json"]
    if outputs is not None:
        args += ["--staging-outputs", str(outputs)]
    return supagate(*args, env=env, cwd=root)


def test_a_pull_request_passes_and_prod_waits_for_staging(project, tmp_path):
    root, env = project
    workflows = _workflows()
    prod_settings = settings_from_stack_file("prod", APP / "Pulumi.prod.yaml")
    pr_jobs = workflows["pr.yml"]["jobs"]
    assert set(prod_settings.github.required_checks) == set(pr_jobs)  # every required check is a PR job
    behind = _staging_outputs(root, tmp_path / "behind.json", with_new=False)

    # The pull request: each required check as its job runs it.
    gate = supagate("check", "--stack", "prod", "--no-advisors", env=env, cwd=root)
    assert gate.returncode == 0, gate.stderr
    assert supagate("workflows", cwd=root).returncode == 0
    for job in ("preview-staging", "preview-prod"):
        command = next(s["run"] for s in pr_jobs[job]["steps"] if "supagate plan" in s.get("run", ""))
        run = supagate(*shlex.split(command)[3:], "--format", "json", env=env, cwd=root)  # after `uv run supagate`
        assert run.returncode == 0, f"{job} would fail the pull request: {run.stderr}"
        if job == "preview-prod":  # no token to read staging's outputs: the plan says what it assumed
            assert "staging outputs assumed from this commit" in run.stderr

    # deploy-prod before staging applied it: blocked, naming the migration.
    deploy = _pulumi_step(workflows["deploy-prod.yml"]["jobs"]["deploy"])
    assert deploy["command"] == "up"
    blocked = _plan(root, env, "prod", deploy["policyPackConfigs"], behind)
    assert blocked.returncode == 1
    assert [v for v in json.loads(blocked.stdout)["violations"] if v["enforcement"] == "mandatory"
            and v["policy"] == "supabase-migrations-require-staging-first" and NEW_MIGRATION[0] in v["message"]]

    # After the merge deployed staging: the same deploy passes.
    caught_up = _staging_outputs(root, tmp_path / "caught-up.json", with_new=True)
    passed = _plan(root, env, "prod", deploy["policyPackConfigs"], caught_up)
    assert passed.returncode == 0, passed.stderr
