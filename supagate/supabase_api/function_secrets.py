"""Edge function secrets: the names this stack manages, and nothing else.

The list endpoint returns each secret's SHA-256 digest, never its value, so drift is
found by comparing digests; values are sent only in the bulk upsert body and never
logged. Secrets the stack does not manage are never read into state, changed or deleted.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Mapping

from supagate.supabase_api.client import ManagementApi

RESERVED_PREFIX = "SUPABASE_"


@dataclass
class SecretsPlan:
    upsert: list[str] = field(default_factory=list)  # names whose value is new or changed
    delete: list[str] = field(default_factory=list)  # names this stack managed and no longer declares

    @property
    def empty(self) -> bool:
        return not (self.upsert or self.delete)


def digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def read_digests(api: ManagementApi, ref: str, names: set[str]) -> dict[str, str]:
    """name -> the digest the API reports, for the managed names that exist."""
    listed = api.get(f"/v1/projects/{ref}/secrets") or []
    return {s["name"]: s.get("value", "") for s in listed if s.get("name") in names}


def plan(desired: Mapping[str, str], remote_digests: Mapping[str, str], previously_managed: set[str]) -> SecretsPlan:
    result = SecretsPlan()
    for name, value in sorted(desired.items()):
        if remote_digests.get(name) != digest(value):
            result.upsert.append(name)
    result.delete = sorted(n for n in previously_managed - set(desired) if n in remote_digests)
    return result


def apply(api: ManagementApi, ref: str, desired: Mapping[str, str], steps: SecretsPlan) -> None:
    for name in steps.upsert + steps.delete:
        if name.startswith(RESERVED_PREFIX):
            raise ValueError(f"secret {name}: names starting with {RESERVED_PREFIX} are reserved by Supabase")
    names = set(steps.upsert) | set(steps.delete)
    if steps.upsert:  # a lost answer: the listed digests say whether the upsert took effect
        api.request("POST", f"/v1/projects/{ref}/secrets",
                    json_body=[{"name": n, "value": desired[n]} for n in steps.upsert],
                    applied=lambda: all(read_digests(api, ref, names).get(n) == digest(desired[n])
                                        for n in steps.upsert))
    if steps.delete:
        api.request("DELETE", f"/v1/projects/{ref}/secrets", json_body=steps.delete,
                    applied=lambda: not set(read_digests(api, ref, names)) & set(steps.delete))
