"""`supagate plan`: the program under the mock runtime, then the real pack over gRPC."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from tests.cli.test_cli import supagate
from tests.conftest import APP, ROOT


@pytest.fixture(scope="module")
def pack_venv(pack_python):
    return {"SUPAGATE_PACK_VENV": str(Path(pack_python).parent.parent)}


def test_prod_plan_lists_resources_and_passes(pack_venv):
    run = supagate("plan", "--stack", "prod", "--format", "json", env=pack_venv)
    assert run.returncode == 0, run.stderr
    plan = json.loads(run.stdout)
    types = {r["type"] for r in plan["resources"]}
    assert {"pulumi:pulumi:Stack", "supabase-platform:database:Database",
            "pulumi-python:dynamic/supabase:Migrations", "pulumi:pulumi:StackReference",
            "supabase-platform:project:Project", "pulumi-python:dynamic/supabase:ProjectSettings",
            "pulumi-python:dynamic/supabase:EdgeFunction", "pulumi-python:dynamic/supabase:FunctionSecrets"} <= types
    assert not [v for v in plan["violations"] if v["enforcement"] == "mandatory"] and plan["blocked"] is False
    assert all(set(r) == {"type", "name", "parent"} for r in plan["resources"])
    assert "staging outputs assumed from this commit" in run.stderr


def _exposing_private(tmp_path, stack: str):
    document = yaml.safe_load((APP / f"Pulumi.{stack}.yaml").read_text())
    document["config"]["supabase-platform:exposedSchemas"] = ["public", "graphql_public", "private"]
    path = tmp_path / f"Pulumi.{stack}.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


def test_stack_file_breaking_a_prod_rule_blocks_prod_and_is_advisory_on_staging(pack_venv, tmp_path):
    prod = supagate("plan", "--stack", "prod", "--stack-file", str(_exposing_private(tmp_path, "prod")),
                    "--format", "json", env=pack_venv)
    assert prod.returncode == 1, prod.stderr
    blocking = [v for v in json.loads(prod.stdout)["violations"] if v["enforcement"] == "mandatory"]
    assert {v["policy"] for v in blocking} == {"supabase-rls-require-enabled", "supabase-stack-require-rls-coverage"}
    assert all("private.audit_log" in v["message"] for v in blocking)
    staging = supagate("plan", "--stack", "staging", "--stack-file", str(_exposing_private(tmp_path, "staging")),
                       "--format", "json", env=pack_venv)
    assert staging.returncode == 0, staging.stderr
    found = json.loads(staging.stdout)["violations"]
    assert {(v["policy"], v["enforcement"]) for v in found} == {
        ("supabase-rls-require-enabled", "advisory"), ("supabase-stack-require-rls-coverage", "advisory"),
        ("supabase-database-require-network-restrictions", "advisory")}  # staging declares no CIDRs


def test_real_staging_outputs_missing_a_migration_block_prod(pack_venv, tmp_path):
    outputs = tmp_path / "staging-outputs.json"
    outputs.write_text(json.dumps({"migrationChecksums": {}}))
    run = supagate("plan", "--stack", "prod", "--staging-outputs", str(outputs), env=pack_venv)
    assert run.returncode == 1
    assert "supabase-migrations-require-staging-first" in run.stdout
    assert "has not applied 20250103000000_feature_flag_rollout.sql" in run.stdout


def test_bad_stack_and_bad_pack_config_exit_2(pack_venv, tmp_path):
    assert supagate("plan", "--stack", "qa", env=pack_venv).returncode == 2
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"all": "mandatory", "supabase-no-such-policy": "advisory"}))
    run = supagate("plan", "--stack", "prod", "--policy-pack-config", str(bad), env=pack_venv)
    assert run.returncode == 2 and "no policy named supabase-no-such-policy" in run.stderr


def test_weak_passwords_block_prod_and_are_advisory_on_staging(pack_venv, tmp_path):
    results = {}
    for stack in ("prod", "staging"):
        document = yaml.safe_load((APP / f"Pulumi.{stack}.yaml").read_text())
        document["config"]["supabase-platform:auth"]["passwordMinLength"] = 6
        path = tmp_path / f"Pulumi.{stack}.yaml"
        path.write_text(yaml.safe_dump(document))
        run = supagate("plan", "--stack", stack, "--stack-file", str(path), "--format", "json", env=pack_venv)
        found = [v for v in json.loads(run.stdout)["violations"] if v["policy"] == "supabase-auth-require-password-length"]
        results[stack] = (run.returncode, [v["enforcement"] for v in found])
        # Numbers reach the pack as protobuf doubles; the message still says 6, not 6.0.
        assert all("passwords of 6 characters" in v["message"] for v in found), found
    assert results == {"prod": (1, ["mandatory"]), "staging": (0, ["advisory"])}


@pytest.mark.parametrize("change, expected", [
    ({"reviewers": []}, "without a required reviewer"),
    ({"adminsBypass": True}, "lets repository admins skip"),
    ({"preventSelfReview": False}, "lets whoever started a deploy approve it"),
])
def test_production_environment_rules_block_prod(pack_venv, tmp_path, change, expected):
    document = yaml.safe_load((APP / "Pulumi.prod.yaml").read_text())
    document["config"]["supabase-platform:github"]["environment"].update(change)
    path = tmp_path / "Pulumi.prod.yaml"
    path.write_text(yaml.safe_dump(document))
    run = supagate("plan", "--stack", "prod", "--stack-file", str(path), "--format", "json", env=pack_venv)
    assert run.returncode == 1, run.stderr
    found = [v for v in json.loads(run.stdout)["violations"] if v["enforcement"] == "mandatory"]
    assert [v["policy"] for v in found] == ["supabase-github-protect-environment"]
    assert expected in found[0]["message"] and found[0]["resource"].endswith("::delivery-environment")


def _sql_from_the_stack(tmp_path, rules: dict, jobs: dict):
    """Prod's stack file with these alert rules and maintenance jobs, over the test app's
    migrations plus what an app adds for them (tests/pack/test_stack_sql.py EXTRA)."""
    from tests.conftest import APP_MIGRATIONS, write_migrations
    from tests.pack.test_stack_sql import EXTRA

    migrations = tmp_path / "migrations"
    write_migrations(migrations, {p.name: p.read_text() for p in APP_MIGRATIONS.glob("*.sql")} | EXTRA)
    document = yaml.safe_load((APP / "Pulumi.prod.yaml").read_text())
    config = document["config"]
    config["supabase-platform:migrations"]["directory"] = str(migrations)
    config["supabase-platform:alerts"]["rules"].update(rules)
    config["supabase-platform:maintenance"]["jobs"].update(jobs)
    path = tmp_path / "Pulumi.prod.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


def test_sql_from_the_stack_that_would_change_prod_is_refused_at_plan_time(pack_venv, tmp_path):
    """Issue 23: an alert rule calling an app function that deletes passed the denylist; jobs that
    drop a table, directly or through a definer function, planned with PASS. A job's own SQL
    outside the allowed shapes is bad input (exit 2, naming the key); what the gates find in a
    function it calls, or in a rule run behind its boundary, blocks (exit 1)."""
    path = _sql_from_the_stack(
        tmp_path, {"deletes-rows": {"kind": "sql", "query": "select private.purge_rate_limits()", "above": 0}},
        {"definer-drops": {"schedule": "0 5 * * *", "call": "public.reset_assessments"}})
    run = supagate("plan", "--stack", "prod", "--stack-file", str(path), "--format", "json", env=pack_venv)
    assert run.returncode == 1, run.stderr
    found = [v for v in json.loads(run.stdout)["violations"] if v["enforcement"] == "mandatory"]
    assert sorted(v["policy"] for v in found) == ["supabase-alerts-require-proven-sql",
                                                  "supabase-cron-require-gated-sql"], found
    messages = " ".join(v["message"] for v in found)
    assert "cannot execute DELETE in a read-only transaction" in messages
    assert "definer-drops drops table public.assessments" in messages

    path = _sql_from_the_stack(tmp_path, {}, {"drop-assessments": {"schedule": "0 4 * * *",
                                                                   "sql": "drop table public.assessments cascade"}})
    run = supagate("plan", "--stack", "prod", "--stack-file", str(path), "--format", "json", env=pack_venv)
    assert run.returncode == 2 and "maintenance.jobs.drop-assessments.sql is a DROP statement" in run.stderr, \
        run.stderr


def test_sql_from_the_stack_that_only_reads_or_keeps_rows_plans_with_pass(pack_venv, tmp_path):
    path = _sql_from_the_stack(
        tmp_path, {"pending-jobs": {"kind": "sql", "query": "select count(*) from public.background_jobs "
                                                            "where status = 'pending'", "above": 100}},
        {"purge-finished-jobs": {"schedule": "0 4 * * *", "sql": "delete from public.background_jobs "
                                                               "where finished_at < now() - interval '30 days'"}})
    run = supagate("plan", "--stack", "prod", "--stack-file", str(path), "--format", "json", env=pack_venv)
    assert run.returncode == 0, run.stdout
    assert not [v for v in json.loads(run.stdout)["violations"] if v["enforcement"] == "mandatory"]
