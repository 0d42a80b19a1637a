"""A pack check never passes what it cannot read: for each check, an input of the wrong
shape (what a preview may carry: an unknown, a string where a number belongs, a broken
migration) is a violation that says the value could not be evaluated."""

from __future__ import annotations

import pytest

from supagate.offline.resource_types import FUNCTION_SECRETS, MIGRATIONS, PROJECT_SETTINGS
from supagate.pack import checks, settings_checks

REF = "abcdefghijklmnopqrst"
GOOD_SQL = "create table public.t (id int);\nalter table public.t enable row level security;\n"


def _migration(sql=GOOD_SQL, **extra):
    from supagate.migrations.files import sha256

    return {"version": "20250101000000", "name": "t", "sql": sql, "checksum": sha256(sql) if isinstance(sql, str)
            else None, **extra}


UNREADABLE = [
    ("jwt expiry as text", lambda: settings_checks.jwt_expiry_violations(
        {"project_ref": REF, "auth": {"jwt_exp": "3600"}}, 3600)),
    ("jwt expiry as a boolean", lambda: settings_checks.jwt_expiry_violations(
        {"project_ref": REF, "auth": {"jwt_exp": True}}, 3600)),
    ("auth not a map", lambda: settings_checks.jwt_expiry_violations({"project_ref": REF, "auth": "x"}, 3600)),
    ("password length unknown", lambda: settings_checks.password_length_violations(
        {"project_ref": REF, "auth": {}}, 8)),
    ("password length as a boolean", lambda: settings_checks.password_length_violations(
        {"project_ref": REF, "auth": {"password_min_length": True}}, 8)),
    ("ssl unknown", lambda: settings_checks.ssl_violations({"project_ref": REF, "ssl_enforced": "true"})),
    ("network restrictions not a map", lambda: settings_checks.network_violations(
        {"project_ref": REF, "network_restrictions": ["10.0.0.0/8"]})),
    ("a CIDR that is not one", lambda: settings_checks.network_violations(
        {"project_ref": REF, "network_restrictions": {"dbAllowedCidrs": [42]}})),
    ("verify_jwt as text", lambda: settings_checks.function_jwt_violations(
        {"slug": "f", "verify_jwt": "false"}, ["f"])),
    ("verify_jwt unknown", lambda: settings_checks.function_jwt_violations({"slug": "f"}, [])),
    ("function secrets not a map", lambda: settings_checks.secret_output_violations(
        FUNCTION_SECRETS, {"secrets": ["A"]}, ["secrets", "access_token"])),
    ("reviewers not a list of maps", lambda: settings_checks.environment_violations(
        {"environment": "production", "reviewers": "ana", "preventSelfReview": True, "canAdminsBypass": False,
         "deploymentBranchPolicy": {"protectedBranches": True}})),
    ("migrations not a list", lambda: checks.migration_findings({"migrations": "x"}, "rls-missing")),
    ("a migration without its SQL", lambda: checks.migration_findings(
        {"migrations": [{"version": "1", "name": "a"}]}, "rls-missing")),
    ("SQL that cannot be split", lambda: checks.migration_findings(
        {"migrations": [_migration("select 'unterminated;")]}, "rls-missing")),
    ("exposed schemas not a list", lambda: checks.migration_findings(
        {"migrations": [_migration()], "exposed_schemas": "public"}, "rls-missing")),
    ("checksums of SQL that is not text", lambda: checks.checksum_mismatches({"migrations": [_migration(sql=None)]})),
    ("promotion not a map", lambda: checks.promotion_violations({"migrations": [_migration()], "promotion": "x"})),
    ("staging's function hashes unknown", lambda: checks.function_promotion_violations(
        {"stack": "org/p/staging"}, {"fn": "a" * 64})),
    ("API schemas not text", lambda: checks.rls_coverage([
        (PROJECT_SETTINGS, {"postgrest": {"db_schema": ["public"]}}), (MIGRATIONS, {"migrations": [_migration()]})])),
    ("coverage of broken SQL", lambda: checks.rls_coverage([(MIGRATIONS, {"migrations": [_migration("select '")]})])),
]


@pytest.mark.parametrize("case, run", UNREADABLE, ids=[c for c, _ in UNREADABLE])
def test_unreadable_input_is_a_violation(case, run):
    found = run()
    assert found, f"{case}: the check passed a value it could not read"
    assert all(f.message and f.fix for f in found)


def test_readable_inputs_still_pass():
    assert settings_checks.jwt_expiry_violations({"project_ref": REF, "auth": {"jwt_exp": 3600}}, 3600) == []
    assert settings_checks.password_length_violations({"project_ref": REF, "auth": {"password_min_length": 10}}, 8) == []
    assert settings_checks.function_jwt_violations({"slug": "f", "verify_jwt": True}, []) == []
    assert checks.migration_findings({"migrations": [_migration()]}, "rls-missing") == []
    assert checks.checksum_mismatches({"migrations": [_migration()]}) == []
    assert checks.promotion_violations({"migrations": [_migration()]}) is None  # not prod: not applicable
    assert checks.rls_coverage([(PROJECT_SETTINGS, {"postgrest": {"db_schema": "public"}}),
                                (MIGRATIONS, {"migrations": [_migration()]})]) == []
