"""This stack's `supabase-platform:*` config as one mapping, however the engine passed it."""

from __future__ import annotations

from typing import Any

from supagate.config.models import NAMESPACE


def stack_config_values() -> dict[str, Any]:
    # The language host passes config in PULUMI_CONFIG; mocks and the automation API set
    # it in the runtime's config map. Both are read so unknown keys are reported too.
    from pulumi.runtime.config import CONFIG, get_config_env

    merged = {**get_config_env(), **CONFIG.get()}
    prefix = f"{NAMESPACE}:"
    return {key[len(prefix):]: value for key, value in merged.items() if key.startswith(prefix)}
