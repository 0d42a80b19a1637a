"""The Pulumi program under the SDK's mock runtime, one fresh process per stack."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import yaml

from supagate.program import is_secret
from tests.conftest import ROOT

DB_PASSWORD = "s3cr3t-db-pw"
WEBHOOK_SECRET = "whsec-never-in-plain-state"


def stack_config(stack: str) -> dict:
    document = yaml.safe_load((ROOT / f"Pulumi.{stack}.yaml").read_text())["config"]
    config = {key.split(":", 1)[1]: value for key, value in document.items()}
    config["dbUrl"] = f"postgresql://postgres:{DB_PASSWORD}@db.example.supabase.co:5432/postgres"
    config["functionSecrets"] = {"TERRA_WEBHOOK_SECRET": WEBHOOK_SECRET}
    return config


def run_program(stack: str, config: dict, stack_outputs: dict | None = None) -> dict:
    request = {"root": str(ROOT), "stack": stack, "config": config, "secret_keys": ["dbUrl", "functionSecrets"],
               "stack_outputs": stack_outputs}
    proc = subprocess.run([sys.executable, "-m", "supagate.program"], input=json.dumps(request),
                          capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


@pytest.fixture(scope="module", params=["staging", "prod"])
def evaluated(request):
    return request.param, run_program(request.param, stack_config(request.param))


def test_program_registers_the_database_component_and_its_migrations(evaluated):
    stack, result = evaluated
    assert result["error"] is None
    types = {(r["type"], r["name"]) for r in result["registrations"]}
    assert ("supabase-platform:database:Database", "database") in types
    assert ("pulumi-python:dynamic/supabase:Migrations", "database-migrations") in types


def test_every_child_has_its_component_as_parent(evaluated):
    _, result = evaluated
    by_urn = {r["urn"]: r for r in result["registrations"]}
    for r in result["registrations"]:
        if r["custom"] and r["type"] != "pulumi:pulumi:StackReference":  # a read, not a managed resource
            parent = by_urn.get(r["parent"])
            assert parent is not None and not parent["custom"], f"{r['name']} is not inside a component"
            assert parent["type"].startswith("supabase-platform:")
            assert r["name"].startswith(parent["name"] + "-")


def test_prod_reads_staging_checksums_through_a_stack_reference():
    outputs = {"momentum-health/supabase-platform/staging": {"migrationChecksums": {"20250101000000": "abc"}}}
    result = run_program("prod", stack_config("prod"), outputs)
    reference = [r for r in result["registrations"] if r["type"] == "pulumi:pulumi:StackReference"]
    assert [r["name"] for r in reference] == ["momentum-health/supabase-platform/staging"]
    migrations = next(r for r in result["registrations"] if r["type"].endswith("supabase:Migrations"))
    assert migrations["inputs"]["promotion"] == {"stack": "momentum-health/supabase-platform/staging",
                                                 "checksums": {"20250101000000": "abc"}}
    staging = run_program("staging", stack_config("staging"))
    migrations = next(r for r in staging["registrations"] if r["type"].endswith("supabase:Migrations"))
    assert "promotion" not in migrations["inputs"]


def test_migration_inputs_carry_every_file_and_its_checksum(evaluated):
    _, result = evaluated
    migrations = next(r for r in result["registrations"] if r["name"] == "database-migrations")
    files = sorted(p.name for p in (ROOT / "supabase" / "migrations").glob("*.sql"))
    listed = [f"{m['version']}_{m['name']}.sql" for m in migrations["inputs"]["migrations"]]
    assert listed == files
    assert all(len(m["checksum"]) == 64 and m["sql"] for m in migrations["inputs"]["migrations"])


def test_no_secret_in_a_plain_input(evaluated):
    _, result = evaluated

    def plain_strings(value):
        if is_secret(value):
            return
        if isinstance(value, dict):
            for v in value.values():
                yield from plain_strings(v)
        elif isinstance(value, list):
            for v in value:
                yield from plain_strings(v)
        elif isinstance(value, str):
            yield value

    for r in result["registrations"]:
        for text in plain_strings(r["inputs"]):
            assert DB_PASSWORD not in text and WEBHOOK_SECRET not in text, f"secret in plain input of {r['name']}"
    migrations = next(r for r in result["registrations"] if r["name"] == "database-migrations")
    assert is_secret(migrations["inputs"]["db_url"])
    assert "db_url" in migrations["additional_secret_outputs"]


def test_invalid_config_names_every_bad_key_and_registers_nothing():
    config = stack_config("prod")
    config["projectRef"] = "Not-A-Ref"
    config["auth"] = {**config["auth"], "jwtExpiry": 5, "siteUrl": "ftp://x"}
    config["networkRestrictions"] = ["10.0.0.300/8"]
    config["monitoring"] = {"maxOverdueJob": 3}
    config["secretNames"] = ["SUPABASE_URL"]
    result = run_program("prod", config)
    error = result["error"]
    for key in ("supabase-platform:projectRef", "supabase-platform:auth.jwtExpiry",
                "supabase-platform:auth.siteUrl", "supabase-platform:networkRestrictions",
                "supabase-platform:monitoring.maxOverdueJob", "supabase-platform:secretNames"):
        assert key in error, f"{key} missing from: {error}"
    assert "Pulumi.prod.yaml" in error
    assert [r for r in result["registrations"] if r["type"] != "pulumi:pulumi:Stack"] == []
    assert DB_PASSWORD not in error
