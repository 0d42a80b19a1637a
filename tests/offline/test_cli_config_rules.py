"""The Pulumi CLI's own config rules, replayed over Pulumi.yaml and each stack file set up as
the README says, with and without each optional secret. Followed: pulumi/pulumi
pkg/workspace/project.go (Project.Validate, RewriteShorthandConfigValues,
ValidateConfigValue) and config.go (mergeConfig, validateStackConfigValues): a typed
secret key whose stack value is not `secure:` fails, and a default counts as a plain value
(pulumi/pulumi#21865)."""

from __future__ import annotations

import itertools
import math

import pytest
import yaml

from tests.conftest import APP, ROOT

PROJECT = "supabase-platform"
OPTIONAL_SECRETS = ("pulumiAccessToken", "verifyDbUrl", "githubToken")


def _secure(value: str) -> dict:
    return {"secure": "v1:" + value.encode().hex()}


def _project() -> dict:
    document = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())
    config = {}
    for key, spec in (document.get("config") or {}).items():
        namespaced = ":" not in key or key.startswith(PROJECT + ":")
        if not isinstance(spec, dict):  # shorthand: a default (project key) or a value
            spec = {"default": spec} if namespaced else {"value": spec}
        config[key if ":" in key else f"{PROJECT}:{key}"] = spec
    return config


def _valid(type_name: str, items: dict | None, value) -> bool:
    if type_name == "string":
        return isinstance(value, str)
    if type_name == "integer":
        if isinstance(value, bool):
            return False
        if isinstance(value, int) or (isinstance(value, float) and value == math.trunc(value)):
            return True
        return isinstance(value, str) and value.lstrip("-").isdigit()
    if type_name == "boolean":
        return isinstance(value, bool) or value in ("true", "false")
    if not isinstance(value, list) or items is None:
        return False
    return all(_valid(items["type"], items.get("items"), v) for v in value)


def project_errors(config: dict) -> list[str]:
    errors = []
    for key, spec in config.items():
        if "default" in spec and "value" in spec:
            errors.append(f"project config '{key}' cannot have both a 'default' and 'value' attribute")
        typed = "type" in spec
        if typed and spec["type"] == "array" and "items" not in spec:
            errors.append(f"The configuration key '{key}' declares an array but no 'items'")
        if typed and "default" in spec and not _valid(spec["type"], spec.get("items"), spec["default"]):
            errors.append(f"The default value specified for configuration key '{key}' is not of the expected type")
    return errors


def stack_errors(config: dict, stack_config: dict, stack: str) -> list[str]:
    """mergeConfig then validateStackConfigValues, as `pulumi preview/up` run them."""
    merged = dict(stack_config)
    missing = []
    for key, spec in sorted(config.items()):
        if key in merged:
            continue
        if "default" not in spec and "value" not in spec:
            missing.append(key)
        else:
            merged[key] = spec.get("default", spec.get("value"))  # applied as a plain value
    if missing:
        return [f"Stack '{stack}' is missing configuration value(s) {missing}"]
    for key, spec in sorted(config.items()):
        if "type" not in spec:
            continue
        value = merged[key]
        secure = isinstance(value, dict) and set(value) == {"secure"}
        if spec.get("secret") and not secure:
            return [f"Stack '{stack}' with configuration key '{key}' must be encrypted as it's secret"]
        plain = "x" if secure else value
        if isinstance(plain, (int, float)) and not isinstance(plain, bool):
            plain = str(plain)  # stack values are strings unless they are objects
        if not _valid(spec["type"], spec.get("items"), plain):
            return [f"Stack '{stack}' with configuration key '{key}' must be of type '{spec['type']}'"]
    return []


def _as_readme_says(stack: str, optional: tuple[str, ...]) -> dict:
    document = yaml.safe_load((APP / f"Pulumi.{stack}.yaml").read_text())
    config = dict(document.get("config") or {})
    config[f"{PROJECT}:dbUrl"] = _secure("postgresql://postgres:pw@db.example.supabase.co:5432/postgres")
    config[f"{PROJECT}:supabaseAccessToken"] = _secure("sbp_token")
    names = config.get(f"{PROJECT}:secretNames") or []
    config[f"{PROJECT}:functionSecrets"] = {name: _secure("value") for name in names}
    for key in optional:
        config[f"{PROJECT}:{key}"] = _secure("value")
    return config


def test_pulumi_yaml_passes_the_project_rules():
    assert project_errors(_project()) == []


@pytest.mark.parametrize("stack", ["staging", "prod"])
@pytest.mark.parametrize("optional", [combo for n in range(len(OPTIONAL_SECRETS) + 1)
                                      for combo in itertools.combinations(OPTIONAL_SECRETS, n)],
                         ids=lambda combo: "+".join(combo) or "no-optional-secrets")
def test_stack_set_up_as_the_readme_says_passes_the_cli(stack, optional):
    assert stack_errors(_project(), _as_readme_says(stack, optional), stack) == []


def test_the_replay_catches_the_day_one_breakage():
    """The old declaration (a typed secret with a default) fails exactly as the CLI failed."""
    config = _project()
    config[f"{PROJECT}:pulumiAccessToken"] = {"type": "string", "secret": True, "default": ""}
    errors = stack_errors(config, _as_readme_says("prod", ()), "prod")
    assert errors == ["Stack 'prod' with configuration key 'supabase-platform:pulumiAccessToken' must be "
                      "encrypted as it's secret"]
    without_token = _as_readme_says("prod", ())
    del without_token[f"{PROJECT}:supabaseAccessToken"]
    assert "missing configuration" in stack_errors(_project(), without_token, "prod")[0]
