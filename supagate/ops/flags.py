"""Feature flags: bucketing v1 (the same in SQL, Deno and Python), rollout plans, and the
canonical form the FeatureFlag resource, the pack and ops.apply_flag share.

Bucketing v1: bucket = first 4 bytes of SHA-256(salt + ":" + subject), unsigned big-endian,
modulo 10000 (basis points); on iff bucket < the step's basis points. Built-in SHA-256 in
every runtime (no hand-written hash to diverge), a salt fixed at creation (restarting or
renaming never reshuffles), and monotone: raising the percentage only adds users.
The modulo bias is 7296 / 2^32, about 2e-6.
"""

from __future__ import annotations

import hashlib
from typing import Any

BUCKETING_VERSION = 1
FULL = 10000  # basis points
INTERNAL = -1  # a step for internal users (flag members) only
PRESETS = {"internal-10-50-100": [INTERNAL, 1000, 5000, FULL], "canary-5-25-50-100": [500, 2500, 5000, FULL]}


def bucket(salt: str, subject: str) -> int:
    digest = hashlib.sha256(f"{salt}:{subject}".encode()).digest()
    return int.from_bytes(digest[:4], "big") % FULL


def enabled(salt: str, subject: str | None, basis_points: int) -> bool:
    """Signed-out callers (no subject) are off at a partial step: no shared anonymous bucket."""
    if basis_points >= FULL:
        return True
    if basis_points <= 0 or not subject:
        return False
    return bucket(salt, subject) < basis_points


def describe(basis_points: int) -> str:
    return "internal users" if basis_points == INTERNAL else f"{basis_points / 100:g}%"


def canonical(key: str, flag: Any) -> dict[str, Any]:
    """The flag as the resource and ops.apply_flag take it (a config.models.FeatureFlag)."""
    from supagate.ops.kinds import interval

    steps = flag.plan_steps()
    return {"key": key, "kind": flag.kind, "description": flag.description, "salt": key,
            "enabled": flag.enabled, "audience": flag.audience, "steps": steps, "step": flag.current_step(),
            "soak": interval(flag.soak, f"featureFlags.{key}.soak"), "paused": flag.paused,
            "advance": flag.advance, "guards": list(flag.guards), "internal_users": list(flag.internal_users)}


def plan_problems(key: str, steps: list[int]) -> list[str]:
    """A plan rolls forward in strictly increasing steps to 100%, starting small."""
    where = f"featureFlags.{key}"
    problems = []
    if not steps or steps[-1] != FULL:
        problems.append(f"{where}: the plan must end at 100%")
    if any(b <= a for a, b in zip(steps, steps[1:])):
        problems.append(f"{where}: the plan's steps must strictly increase ({', '.join(map(describe, steps))})")
    if steps and steps[0] != INTERNAL and steps[0] > 1000 and len(steps) > 1:
        problems.append(f"{where}: the first step is {describe(steps[0])}; start with internal users or 10% at most")
    if any(s != INTERNAL and not 0 < s <= FULL for s in steps):
        problems.append(f"{where}: steps are percentages above 0 and at most 100, or 'internal'")
    return problems
