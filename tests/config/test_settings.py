import pytest
import yaml

from supagate.config.loading import SettingsError, load_settings, settings_from_stack_file
from tests.conftest import APP, ROOT


def keys(stack):
    return set(yaml.safe_load((APP / f"Pulumi.{stack}.yaml").read_text())["config"])


def test_prod_and_staging_set_the_same_keys():
    assert keys("prod") == keys("staging")


def test_every_stack_key_is_declared_in_pulumi_yaml_with_a_description():
    declared = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())["config"]
    assert keys("prod") <= set(declared)
    for key, spec in declared.items():
        assert spec.get("description"), key
        assert "type" in spec or "default" in spec, key


@pytest.mark.parametrize("stack", ["staging", "prod"])
def test_stack_files_load(stack):
    settings = settings_from_stack_file(stack, APP / f"Pulumi.{stack}.yaml")
    assert settings.stack == stack and len(settings.project_ref) == 20


PRODUCTION = {"tier": "production", "projectRef": "a" * 20, "stagingStack": "org/supabase-platform/staging"}


def test_prod_refuses_an_open_network():
    with pytest.raises(SettingsError, match="0.0.0.0/0 opens the prod database"):
        load_settings("prod", {**PRODUCTION, "networkRestrictions": ["0.0.0.0/0"]}, "Pulumi.prod.yaml")
    assert load_settings("staging", {"tier": "staging", "projectRef": "a" * 20,
                                     "networkRestrictions": ["0.0.0.0/0"]}, "x")


def test_the_tier_decides_not_the_name():
    """A copy of prod named `production` is production; `prod` declared staging is staging."""
    assert load_settings("production", PRODUCTION, "Pulumi.production.yaml").is_production
    assert not load_settings("prod", {**PRODUCTION, "tier": "staging"}, "Pulumi.prod.yaml").is_production
    with pytest.raises(SettingsError, match="supabase-platform:tier: required"):
        load_settings("prod", {"projectRef": "a" * 20}, "Pulumi.prod.yaml")
    with pytest.raises(SettingsError, match="supabase-platform:tier: Input should be"):
        load_settings("prod", {**PRODUCTION, "tier": "prod"}, "Pulumi.prod.yaml")


def test_a_production_tier_without_a_promotion_source_fails_closed():
    without = {k: v for k, v in PRODUCTION.items() if k != "stagingStack"}
    with pytest.raises(SettingsError, match="tier production without stagingStack"):
        load_settings("production", without, "Pulumi.production.yaml")
    assert load_settings("production", {**without, "noStagingReason": "one-person side project, tested locally"}, "x")


def test_function_without_jwt_needs_a_signature_header_and_secrets_need_values():
    with pytest.raises(SettingsError) as err:
        load_settings("staging", {"tier": "staging", "projectRef": "a" * 20, "functions": {"hook": {"verifyJwt": False}},
                                  "secretNames": ["API_KEY"]}, "Pulumi.staging.yaml")
    assert "functions.hook: verifyJwt is false without a signatureHeader" in str(err.value)
    assert "functionSecrets has no value" in str(err.value)


def test_secret_values_never_appear_in_errors():
    with pytest.raises(SettingsError) as err:
        load_settings("prod", {**PRODUCTION, "dbUrl": "mysql://root:hunter2@x/db"}, "Pulumi.prod.yaml")
    assert "dbUrl" in str(err.value) and "hunter2" not in str(err.value)
    settings = load_settings("prod", {**PRODUCTION, "dbUrl": "postgresql://u:hunter2@x/db"}, "x")
    assert "hunter2" not in repr(settings)


def test_postgres_keys_are_the_apis_and_typed():
    with pytest.raises(SettingsError) as raised:
        load_settings("staging", {"tier": "staging", "projectRef": "abcdefghijklmnopqrst",
                                  "postgres": {"idle_in_transaction_session_timeout": "30s", "max_connections": "many"}},
                      "Pulumi.staging.yaml")
    message = str(raised.value)
    assert "supabase-platform:postgres: 'idle_in_transaction_session_timeout' cannot be set through the " \
           "Management API" in message and "ALTER ROLE" in message


def test_undeclared_auth_keys_are_not_managed():
    from supagate.supabase_api.project_settings import desired_state

    settings = load_settings("staging", {"tier": "staging", "projectRef": "abcdefghijklmnopqrst", "auth": {"jwtExpiry": 1800},
                                         "networkRestrictions": []}, "Pulumi.staging.yaml")
    state = desired_state(settings)
    assert state["auth"] == {"jwt_exp": 1800}
    assert "network_restrictions" not in state and "pooler" not in state and "storage" not in state


def test_a_stack_file_importing_esc_environments_is_not_planned_blind(tmp_path):
    """A red-team pass: `environment: [org/ops-extras]` planned with PASS, while the values it
    imports (alert SQL, jobs) reach the program unseen by the offline plan."""
    from supagate.config.loading import SettingsError, settings_from_stack_file

    path = tmp_path / "Pulumi.prod.yaml"
    config = {"config": {"supabase-platform:tier": "staging", "supabase-platform:projectRef": "a" * 20}}
    path.write_text(yaml.safe_dump({**config, "environment": ["momentum-health/ops-extras"]}))
    with pytest.raises(SettingsError, match="`environment:` imports Pulumi ESC environments"):
        settings_from_stack_file("prod", path)
    path.write_text(yaml.safe_dump(config))
    assert settings_from_stack_file("prod", path).tier == "staging"
