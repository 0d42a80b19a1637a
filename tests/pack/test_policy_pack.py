"""Every policy's pass/fail cases through the real pack process over gRPC, for both stacks'
configs: each violation carries the level the rule registry gives the stack's tier
(supagate/gates/registry.py), as policies/config/<stack>.json sets it."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from supagate.gates.registry import STATIC_RULES, policy_levels

TIERS = {"prod": "production", "staging": "staging"}  # what each stack file declares

from supagate.migrations.files import load_migrations
from supagate.offline.resource_types import MIGRATIONS, PROJECT_SETTINGS, migration_inputs
from tests.conftest import write_migrations
from tests.gates.test_gate_cases import CASES_DIR as GATE_CASES

CASES_DIR = Path(__file__).parent / "cases"
URN = "urn:pulumi:{stack}::supabase-platform::{type}::{name}"


def _resource(stack: str, type_: str, name: str, inputs: dict, secret_outputs=()) -> dict:
    """A resource as the engine shows it: inputs to Analyze, outputs (after a simulated
    create: our providers return their inputs plus what they computed) to AnalyzeStack."""
    return {"type": type_, "name": name, "urn": URN.format(stack=stack, type=type_, name=name), "parent": "",
            "inputs": inputs, "outputs": dict(inputs), "additional_secret_outputs": list(secret_outputs)}


def _expected_level(stack: str, policy: str) -> str:
    return policy_levels(TIERS[stack])[policy]


def _resource_cases():
    for path in sorted(CASES_DIR.glob("*.yaml")):
        document = yaml.safe_load(path.read_text())
        for case in document["cases"]:
            yield pytest.param(document.get("type"), case, id=f"{case['policy']}:{case['expect']}:{case['name']}")


@pytest.mark.parametrize("type_, case", list(_resource_cases()))
def test_resource_policy_case(pack, type_, case):
    stack, running, _ = pack
    resource = _resource(stack, case.get("type") or type_, case["name"], case["inputs"],
                         case.get("additional_secret_outputs", ["db_url", "secrets"]))
    found = [v for v in running.analyze(resource) if v.rule == case["policy"]]
    if case["expect"] == "violation":
        assert found, f"{case['policy']} did not fire"
        assert {v.enforcement for v in found} == {_expected_level(stack, case["policy"])}
        assert all("Fix:" in v.message for v in found)
    else:
        assert not found, [v.message for v in found]


def _migration_cases():
    policies = {rule.id: rule.policy for rule in STATIC_RULES}
    for path in sorted(GATE_CASES.glob("*.yaml")):
        document = yaml.safe_load(path.read_text())
        policy = policies.get(document["rule"])
        if policy is None:
            continue  # shadow-database and history rules run in `supagate check`
        for case in document["cases"]:
            if case.get("shadow_only") or "applied" in case:
                continue  # the pack sees the SQL only: no shadow database, no target history
            yield pytest.param(policy, document.get("advisory", False), case,
                               id=f"{policy}:{case['expect']}:{case['name']}")


@pytest.mark.parametrize("policy, advisory_rule, case", list(_migration_cases()))
def test_migration_rule_policy_case(pack, policy, advisory_rule, case, tmp_path):
    stack, running, _ = pack
    source = write_migrations(tmp_path, case["migrations"])
    for stem, sql in (case.get("down") or {}).items():
        write_migrations(source / "down", {f"{stem}.down.sql": sql})
    inputs = {"db_url": "postgresql://postgres@127.0.0.1/postgres",
              "migrations": migration_inputs(load_migrations(source)), "exposed_schemas": ["public", "graphql_public"]}
    found = [v for v in running.analyze(_resource(stack, MIGRATIONS, "database-migrations", inputs, ["db_url"]))
             if v.rule == policy]
    if case["expect"] == "unsafe" and not _allowed(case):
        assert found, f"{policy} did not fire"
        assert {v.enforcement for v in found} == {_expected_level(stack, policy)}
    else:
        assert not found, [v.message for v in found]


def _allowed(case) -> bool:
    return any("gate:allow" in sql for sql in case["migrations"].values())


NOTES = {"20250101000000_notes.sql": (
    "create table public.notes (id bigint primary key, user_id uuid references auth.users);\n"
    "alter table public.notes enable row level security;\n"
    "create policy \"own\" on public.notes for select to authenticated using ((select auth.uid()) = user_id);\n")}
PRIVATE = {"20250102000000_private.sql": "create schema private;\ncreate table private.ledger (id bigint primary key);\n"}


def _migrations_resource(stack, tmp_path, files, **extra) -> dict:
    inputs = {"db_url": "postgresql://postgres@127.0.0.1/postgres", "exposed_schemas": ["public"],
              "migrations": migration_inputs(load_migrations(write_migrations(tmp_path, files))), **extra}
    return _resource(stack, MIGRATIONS, "database-migrations", inputs, ["db_url"])


def _settings_resource(stack, schemas: str) -> dict:
    return _resource(stack, PROJECT_SETTINGS, "project-settings",
                     {"project_ref": "prodmomentummeterapp", "postgrest": {"db_schema": schemas}})


def test_rls_coverage_reads_the_api_settings_exposed_schemas(pack, tmp_path):
    stack, running, _ = pack
    migrations = _migrations_resource(stack, tmp_path, {**NOTES, **PRIVATE})
    covered = running.analyze_stack([migrations, _settings_resource(stack, "public,graphql_public")])
    assert not [v for v in covered if v.rule == "supabase-stack-require-rls-coverage"]
    leaking = running.analyze_stack([migrations, _settings_resource(stack, "public,private")])
    found = [v for v in leaking if v.rule == "supabase-stack-require-rls-coverage"]
    assert len(found) == 1 and "private.ledger" in found[0].message
    assert found[0].enforcement == _expected_level(stack, "supabase-stack-require-rls-coverage")


def test_promotion_needs_every_migration_on_staging_with_the_same_checksum(pack, tmp_path):
    stack, running, _ = pack
    files = {**NOTES, **PRIVATE}
    checksums = {m["version"]: m["checksum"] for m in
                 _migrations_resource(stack, tmp_path / "a", files)["inputs"]["migrations"]}
    promoted = {"stack": "org/supabase-platform/staging", "checksums": checksums, "function_hashes": {}}
    ok = running.analyze(_migrations_resource(stack, tmp_path / "b", files, promotion=promoted))
    assert not [v for v in ok if v.rule == "supabase-migrations-require-staging-first"]
    behind = {**promoted, "checksums": {"20250101000000": checksums["20250101000000"]}}
    found = [v for v in running.analyze(_migrations_resource(stack, tmp_path / "c", files, promotion=behind))
             if v.rule == "supabase-migrations-require-staging-first"]
    assert len(found) == 1 and "20250102000000_private.sql" in found[0].message
    assert found[0].object.endswith("::database-migrations")
    tampered = {**promoted, "checksums": {**checksums, "20250101000000": "0" * 64}}
    found = [v for v in running.analyze(_migrations_resource(stack, tmp_path / "d", files, promotion=tampered))
             if v.rule == "supabase-migrations-require-staging-first"]
    assert len(found) == 1 and "applied a different version" in found[0].message


def test_promotion_needs_every_function_on_staging_with_the_same_code(pack, tmp_path):
    """A prod deploy that changes only a function: the migrations are unchanged, so the
    resource's outputs would be the old ones; the policy reads the new inputs, where the
    program puts the hashes this deploy ships."""
    stack, running, _ = pack
    checksums = {m["version"]: m["checksum"] for m in
                 _migrations_resource(stack, tmp_path / "a", NOTES)["inputs"]["migrations"]}

    def violations(staged, deploying):
        promoted = {"stack": "org/supabase-platform/staging", "checksums": checksums, "function_hashes": staged,
                    "deploying_functions": deploying}
        resource = _migrations_resource(stack, tmp_path / f"m{len(str(staged))}{len(str(deploying))}", NOTES,
                                        promotion=promoted)
        return [v.message for v in running.analyze(resource) if v.rule == "supabase-migrations-require-staging-first"]

    assert violations({"health-check": "a" * 64}, {"health-check": "a" * 64}) == []
    changed = violations({"health-check": "a" * 64}, {"health-check": "b" * 64})
    assert len(changed) == 1 and "Edge function health-check would deploy code staging" in changed[0]
    assert "exports no functionHashes" in violations(None, {"health-check": "a" * 64})[0]


def test_forged_checksum_is_mandatory_on_both_stacks(pack, tmp_path):
    stack, running, _ = pack
    resource = _migrations_resource(stack, tmp_path, NOTES)
    resource["inputs"]["migrations"][0]["sql"] += "drop table public.notes;\n"
    found = [v for v in running.analyze(resource) if v.rule == "supabase-migrations-verify-checksums"]
    assert found and found[0].enforcement == "mandatory"


def test_pack_lists_every_policy_with_description_and_remediation(pack):
    _, running, levels = pack
    stack = pack[0]
    info = running.info()
    assert info.name == "supabase-platform"
    assert len(info.policies) == len(levels) >= 20
    # The pack has exactly the policies the registry knows, at the registry's levels.
    assert levels == policy_levels(TIERS[stack])
    for policy in info.policies:
        assert policy.name.startswith("supabase-") and policy.description and policy.remediation_steps
