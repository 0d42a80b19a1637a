"""This stack's `supabase-platform:*` config as one mapping, however the engine passed it."""

from __future__ import annotations

import difflib
from typing import Any

from supagate.config.loading import SettingsError
from supagate.config.models import NAMESPACE


def stack_config_values() -> dict[str, Any]:
    # The language host passes config in PULUMI_CONFIG; mocks and the automation API set
    # it in the runtime's config map. Both are read so unknown keys are reported too.
    from pulumi.runtime.config import CONFIG, get_config_env

    merged = {**get_config_env(), **CONFIG.get()}
    prefix = f"{NAMESPACE}:"
    misspelt = sorted(key for key in merged if key.partition(":")[0] != NAMESPACE
                      and difflib.SequenceMatcher(None, key.partition(":")[0], NAMESPACE).ratio() >= 0.8)
    if misspelt:
        raise SettingsError(f"unknown config namespace in {', '.join(misspelt)}: did you mean {NAMESPACE}:? "
                            "(those values would be ignored)\nFix the key in the stack file; nothing was deployed.")
    return {key[len(prefix):]: value for key, value in merged.items() if key.startswith(prefix)}
