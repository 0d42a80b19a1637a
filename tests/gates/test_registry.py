"""The rule registry is the one source of rule ids, policy names and enforcement per tier:
the pack configs must say what it says, and every rule is findable in its own module."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from supagate.gates.registry import RULES, SETTING_POLICIES, policy_levels
from supagate.gates.rule import PRODUCTION, STAGING
from tests.conftest import APP

CONFIGS = {"prod.json": (PRODUCTION, "deploy"), "prod-pull-request.json": (PRODUCTION, "pull-request"),
           "staging.json": (STAGING, "deploy")}


def _effective(config: dict, policies) -> dict[str, str]:
    """The engine's precedence: the policy's own entry, then `all`, then its declared level
    (every policy in the pack declares mandatory)."""
    def level(entry):
        return entry if isinstance(entry, str) or entry is None else entry.get("enforcementLevel")

    return {p: level(config.get(p)) or level(config.get("all")) or "mandatory" for p in policies}


@pytest.mark.parametrize("filename, tier_and_phase", CONFIGS.items())
def test_pack_config_agrees_with_the_registry(filename, tier_and_phase):
    config = json.loads((APP / "policies" / "config" / filename).read_text())
    expected = policy_levels(*tier_and_phase)
    assert set(config) - {"all"} <= set(expected), "the config names a policy the registry does not know"
    assert _effective(config, expected) == expected


def test_each_rule_lives_in_its_own_module():
    for rule_id, rule in RULES.items():
        import supagate

        module = Path(supagate.__file__).parent / "gates" / "rules" / f"{rule_id.replace('-', '_')}.py"
        assert module.exists(), rule_id
        assert f'ID = "{rule_id}"' in module.read_text()


def test_policy_names_are_unique_and_cover_the_settings_policies():
    names = [r.policy for r in RULES.values() if r.policy]
    assert len(names) == len(set(names))
    assert not set(names) & set(SETTING_POLICIES)


def test_every_config_file_is_known():
    assert {p.name for p in (APP / "policies" / "config").glob("*.json")} == set(CONFIGS)


def test_init_writes_configs_that_agree_with_the_registry():
    from supagate.config.init import pack_configs

    for filename, document in pack_configs(["webhook-terra"]).items():
        expected = policy_levels(*CONFIGS[filename])
        assert _effective(document, expected) == expected, filename
