"""Dynamic provider `supabase:FunctionSecrets`: the edge function secrets this stack
manages (supagate/supabase_api/function_secrets.py does the work). Values come only from Pulumi
secrets and stay secret outputs; drift is found through the digests the API lists."""

from __future__ import annotations

from typing import Any

import pulumi
from pulumi.dynamic import CheckResult, CreateResult, DiffResult, ReadResult, Resource, ResourceProvider, UpdateResult

from supagate.supabase_api import function_secrets
from supagate.supabase_api.function_secrets import digest
from supagate.supabase_api.client import from_inputs
from supagate.offline.resource_types import engine_values


def _digests(props: dict[str, Any]) -> dict[str, str]:
    return {name: digest(value) for name, value in (props.get("secrets") or {}).items()}


class FunctionSecretsProvider(ResourceProvider):
    @engine_values
    def check(self, _olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        """The managed names as a plain input, so the preview shows which secrets change
        (the values are secret and show as [secret])."""
        return CheckResult({**news, "secret_names": sorted(news.get("secrets") or {})}, [])

    @engine_values
    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        old, new = _digests(olds), _digests(news)
        changed = sorted(n for n in set(old) | set(new) if old.get(n) != new.get(n))
        replaces = ["project_ref"] if olds.get("project_ref") != news.get("project_ref") else []
        return DiffResult(changes=bool(changed or replaces), replaces=replaces, delete_before_replace=True)

    def _sync(self, props: dict[str, Any], previously: set[str]) -> dict[str, Any]:
        desired = dict(props.get("secrets") or {})
        with from_inputs(props, secrets=tuple(desired.values())) as api:
            remote = function_secrets.read_digests(api, props["project_ref"], set(desired) | previously)
            steps = function_secrets.plan(desired, remote, previously)
            function_secrets.apply(api, props["project_ref"], desired, steps)
        return {**props, "names": sorted(desired), "drift": []}

    @engine_values
    def create(self, props: dict[str, Any]) -> CreateResult:
        return CreateResult(id_=f"{props['project_ref']}-secrets", outs=self._sync(props, set()))

    @engine_values
    def update(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        return UpdateResult(outs=self._sync(news, set(olds.get("secrets") or {})))

    @engine_values
    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        desired = dict(props.get("secrets") or {})
        with from_inputs(props, secrets=tuple(desired.values())) as api:
            remote = function_secrets.read_digests(api, props["project_ref"], set(desired))
        drift = sorted(n for n in desired if remote.get(n) != digest(desired[n]))
        return ReadResult(id_, {**props, "drift": drift})

    @engine_values
    def delete(self, _id: str, props: dict[str, Any]) -> None:
        names = sorted(props.get("secrets") or {})
        with from_inputs(props) as api:
            remote = function_secrets.read_digests(api, props["project_ref"], set(names))
            function_secrets.apply(api, props["project_ref"], {},
                                   function_secrets.SecretsPlan(delete=[n for n in names if n in remote]))


class FunctionSecrets(Resource, module="supabase", name="FunctionSecrets"):
    names: pulumi.Output[list]
    drift: pulumi.Output[list]

    def __init__(self, name: str, props: dict[str, Any], opts: pulumi.ResourceOptions | None = None):
        opts = pulumi.ResourceOptions.merge(
            opts, pulumi.ResourceOptions(additional_secret_outputs=["secrets", "access_token"]))
        super().__init__(FunctionSecretsProvider(), name, {"names": None, "drift": None, **props}, opts)
