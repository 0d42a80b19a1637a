"""Loading a stack's settings: from the engine's config or straight from a
Pulumi.<stack>.yaml, validated as a whole into one error that names every bad key."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable, Mapping

from pydantic import ValidationError

from supagate.config.models import NAMESPACE, SECRET_KEYS, Settings
from supagate.errors import BadInput


class SettingsError(BadInput):
    """Every problem in a stack's config, one per line, each naming its key."""


def load_settings(stack: str, values: Mapping[str, Any], source: str,
                  is_secret: Callable[[str], bool] | None = None, functions_dir: Path | None = None) -> Settings:
    """Validate `values` (config keys without the namespace, raw JSON strings or values).

    `source` names where they came from (the stack file) for the error message;
    `is_secret(key)`, when the engine can say, refuses a secret key set as plain text;
    `functions_dir` (supabase/functions) is where each function the stack overrides must
    have its folder."""
    data: dict[str, Any] = {"stack": stack}
    problems: list[str] = []
    for key in SECRET_KEYS if is_secret is not None else ():
        if values.get(key) not in (None, "", "{}", {}) and not is_secret(key):
            problems.append(f"{NAMESPACE}:{key}: set as plain text, so it would be stored unencrypted; set it with "
                            f"`pulumi config set --secret {key} VALUE --stack {stack}`")
    for key, raw in values.items():
        if isinstance(raw, str) and raw.startswith(("[", "{")):
            try:
                raw = json.loads(raw)
            except json.JSONDecodeError as exc:
                problems.append(f"{NAMESPACE}:{key}: not valid JSON ({exc.msg})")
                continue
        elif isinstance(raw, str) and raw in ("true", "false"):
            raw = raw == "true"
        data[key] = raw
    if functions_dir is not None and isinstance(data.get("functions"), dict):
        from supagate.supabase_api.edge_functions import overrides_without_folder

        problems += [f"{NAMESPACE}:{problem}" for problem in overrides_without_folder(functions_dir, data["functions"])]
    try:
        settings = Settings.model_validate(data)
    except ValidationError as exc:
        for error in exc.errors(include_input=False, include_url=False):
            location = ".".join(str(part) for part in error["loc"])
            key = f"{NAMESPACE}:{location}" if location else f"{NAMESPACE} (stack {stack})"
            message = error["msg"].removeprefix("Value error, ")
            if error["type"] == "extra_forbidden":
                message = "unknown key; check its spelling against Pulumi.yaml"
            elif error["type"] == "missing":
                message = f"required; set it with `pulumi config set {location} VALUE --stack {stack}`"
            problems.append(f"{key}: {message}")
        settings = None
    if problems:
        raise SettingsError(f"failed to load settings from {source}:\n  " + "\n  ".join(problems)
                            + "\nFix those keys in the stack file (or with `pulumi config set`); "
                              "nothing was deployed.")
    return settings


def settings_from_stack_file(stack: str, path, functions_dir: Path | None = None) -> Settings:
    """Read a Pulumi.<stack>.yaml directly (used by tests, `supagate check` and `plan`)."""
    return load_settings(stack, stack_file_values(path), str(path), functions_dir=functions_dir)


def missing_stack_file(path: Path, stack: str) -> str:
    """The message for a stack with no stack file (an error, never a lenient default)."""
    known = sorted(p.name[len("Pulumi."):-len(".yaml")] for p in Path(path).parent.glob("Pulumi.*.yaml"))
    return (f"{path}: no such stack file (stack {stack!r})\n"
            + (f"Known stacks: {', '.join(known)}." if known else
               "Create it with `pulumi stack init` and set tier (production, staging or development)."))


def read_stack_config(path: Path) -> dict[str, Any]:
    """The `config:` mapping of a stack file (see read_stack_document)."""
    return read_stack_document(path).get("config") or {}


def read_stack_document(path: Path) -> dict[str, Any]:
    """A stack file, refusing what YAML would let through silently:
    a duplicate key (the last one would win), a top level that is not a mapping, text that is
    not UTF-8, and a misspelt namespace (its keys would be ignored)."""
    import difflib

    import yaml

    class StrictLoader(yaml.SafeLoader):
        pass

    def mapping(loader, node, deep=False):
        keys = set()
        for key_node, _ in node.value:
            key = loader.construct_object(key_node, deep=deep)
            if key in keys:
                raise SettingsError(f"{path}:{key_node.start_mark.line + 1}: `{key}` is set twice; YAML would keep "
                                    "only the last one\nKeep one of them.")
            keys.add(key)
        return loader.construct_mapping(node, deep=deep)

    StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, mapping)
    try:
        document = yaml.load(path.read_bytes().decode("utf-8"), Loader=StrictLoader) or {}
    except UnicodeDecodeError as exc:
        raise SettingsError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})\nSave it as UTF-8.") from None
    except (OSError, yaml.YAMLError) as exc:
        raise SettingsError(f"failed to read {path}: {exc}\nCheck the file exists and is valid YAML.") from None
    if not isinstance(document, dict) or not isinstance(document.get("config") or {}, dict):
        raise SettingsError(f"{path}: expected a mapping with a `config:` mapping inside\n"
                            "Start from Pulumi.staging.yaml or run `pulumi stack init`.")
    if document.get("environment"):
        # Pulumi ESC: the engine merges those values into the config; a PR's `supagate plan`
        # (no credentials) cannot read them, so it would pass settings, alert SQL or jobs unseen.
        raise SettingsError(f"{path}: `environment:` imports Pulumi ESC environments, whose values supagate plan and "
                            "check cannot read (they would pass unanalysed)\nWrite the settings in the stack file "
                            "itself, secrets as `secure:` values; nothing was deployed.")
    config = document.get("config") or {}
    problems = []
    for key in config:
        namespace = str(key).partition(":")[0]
        if namespace != NAMESPACE and difflib.SequenceMatcher(None, namespace, NAMESPACE).ratio() >= 0.8:
            problems.append(f"{path}: `{key}`: unknown namespace {namespace!r}; did you mean {NAMESPACE}:? "
                            "(its value would be ignored)")
    if problems:
        raise SettingsError("\n".join(problems) + "\nFix the namespace; nothing was deployed.")
    return document


# Secrets __main__.py requires (config.require_secret); set only through the engine.
REQUIRED_SECRETS = ("dbUrl", "supabaseAccessToken")


def secret_keys_of(path) -> list[str]:
    """The keys the engine would pass as secret for this stack file: those written as
    `secure:` (at any depth) and the required secrets the file leaves to the engine."""
    try:
        config = read_stack_config(Path(path))
    except SettingsError:
        return []

    def secure(value) -> bool:
        if isinstance(value, dict):
            return set(value) == {"secure"} or any(secure(v) for v in value.values())
        return isinstance(value, list) and any(secure(v) for v in value)

    keys = {str(k).partition(":")[2] for k, v in config.items() if str(k).startswith(f"{NAMESPACE}:") and secure(v)}
    present = {str(k).partition(":")[2] for k in config}
    keys |= {k for k in (*REQUIRED_SECRETS, "functionSecrets", "alertSecrets") if k not in present}
    return sorted(keys)


def stack_file_values(path) -> dict[str, Any]:
    """The stack file's config values (without the namespace), ready for the program.

    `secure:` values cannot be decrypted without the Pulumi CLI, so they are replaced with
    placeholders of the right shape; real values only ever come from the engine."""
    path = Path(path)
    config = read_stack_config(path)
    values = {}
    for full_key, value in config.items():
        namespace, _, key = str(full_key).partition(":")
        if namespace != NAMESPACE:
            continue
        values[key] = _placeholder_secrets(key, value)
    # Secrets set only through the engine are absent from the file: stand in for them.
    values.setdefault("dbUrl", _PLACEHOLDER_URL)
    values.setdefault("supabaseAccessToken", "sbp_placeholder")
    secrets = dict(values.get("functionSecrets") or {})
    for name in values.get("secretNames") or ():
        secrets.setdefault(name, "placeholder")
    values["functionSecrets"] = secrets
    alert_secrets = dict(values.get("alertSecrets") or {})
    for name in alert_secret_names(values):
        alert_secrets.setdefault(name, "https://placeholder.invalid/hook")
    values["alertSecrets"] = alert_secrets
    return values


def alert_secret_names(values: dict[str, Any]) -> list[str]:
    """The alertSecrets entries the stack's alert channels name (URLs, HMAC keys)."""
    alerts = values.get("alerts") if isinstance(values.get("alerts"), dict) else {}
    channels = alerts.get("channels") if isinstance(alerts.get("channels"), dict) else {}
    return [name for channel in channels.values() if isinstance(channel, dict)
            for name in (channel.get("secret"), channel.get("signWith")) if isinstance(name, str) and name]


_PLACEHOLDER_URL = "postgresql://postgres:placeholder@127.0.0.1:5432/postgres"


def unset_secrets(path) -> list[str]:
    """The secrets the program requires that the stack file does not hold (`dbUrl`,
    `functionSecrets.NAME`...), so loading it in a real `pulumi preview` would fail.

    A stack file importing a Pulumi ESC environment (`environment:`) may get them from
    there, which cannot be read offline: then nothing is reported as unset."""
    document = read_stack_document(Path(path))
    if document.get("environment"):
        return []
    config = document.get("config") or {}
    present = {str(k).partition(":")[2]: v for k, v in config.items() if str(k).startswith(f"{NAMESPACE}:")}
    held = present.get("functionSecrets") if isinstance(present.get("functionSecrets"), dict) else {}
    alert_held = present.get("alertSecrets") if isinstance(present.get("alertSecrets"), dict) else {}
    return ([key for key in REQUIRED_SECRETS if present.get(key) in (None, "")]
            + [f"functionSecrets.{name}" for name in present.get("secretNames") or () if held.get(name) in (None, "")]
            + [f"alertSecrets.{name}" for name in alert_secret_names(present) if alert_held.get(name) in (None, "")])


def config_set_line(key: str, stack: str) -> str:
    path = f"--path '{key}' " if "." in key else f"{key} "
    return f"pulumi config set --secret {path}VALUE --stack {stack}"


def _placeholder_secrets(key: str, value):
    if isinstance(value, dict) and set(value) == {"secure"}:
        return _PLACEHOLDER_URL if key == "dbUrl" else "placeholder"
    if isinstance(value, dict):
        return {k: _placeholder_secrets(k, v) for k, v in value.items()}
    return value
