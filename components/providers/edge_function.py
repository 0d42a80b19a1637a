"""Dynamic provider `supabase:EdgeFunction`: one function, deployed through the
Management API (supagate/supabase_api/edge_functions.py does the work).

Redeploys only when the bundle's content hash changes; a change of verify_jwt alone is a
PATCH, and after a deploy verify_jwt is checked and corrected (a redeploy may not apply
it). `deno check` runs before every deploy. Deleting the resource deletes the function:
that happens when its folder is gone from supabase/functions.
"""

from __future__ import annotations

from typing import Any

import pulumi
from pulumi.dynamic import (CheckFailure, CheckResult, CreateResult, DiffResult, ReadResult, Resource,
                            ResourceProvider, UpdateResult)

from supagate.supabase_api import edge_functions
from supagate.supabase_api.client import from_inputs
from supagate.offline.resource_types import engine_values

CONTENT_KEYS = ("content_sha256", "entrypoint", "import_map", "static_patterns")


def _source(props: dict[str, Any]) -> edge_functions.EdgeFunctionSource:
    return edge_functions.EdgeFunctionSource(
        slug=props["slug"], entrypoint=props["entrypoint"], verify_jwt=bool(props["verify_jwt"]),
        files=dict(props["files"]), import_map=props.get("import_map"),
        signature_header=props.get("signature_header"), static_patterns=tuple(props.get("static_patterns") or ()))


def _deployed_state(deployed: dict[str, Any]) -> dict[str, Any]:
    return {"version": deployed.get("version"), "function_id": deployed.get("id"),
            "ezbr_sha256": deployed.get("ezbr_sha256")}


class EdgeFunctionProvider(ResourceProvider):
    @engine_values
    def check(self, _olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        """Runs at preview too: a function that does not type-check fails the preview."""
        if not news.get("files"):
            return CheckResult(news, [])  # not known yet during this preview
        try:
            edge_functions.deno_check(_source(news))
        except edge_functions.FunctionError as exc:
            return CheckResult(news, [CheckFailure("files", str(exc))])
        return CheckResult(news, [])

    @engine_values
    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        replaces = [k for k in ("project_ref", "slug") if olds.get(k) != news.get(k)]
        changed = [k for k in (*CONTENT_KEYS, "verify_jwt", "api_url") if olds.get(k) != news.get(k)]
        return DiffResult(changes=bool(replaces or changed), replaces=replaces, delete_before_replace=True)

    def _deploy(self, props: dict[str, Any]) -> dict[str, Any]:
        # `deno check` already ran: the engine calls check() on these inputs before every
        # create and update, in `up` as in preview.
        with from_inputs(props) as api:
            deployed = edge_functions.deploy(api, props["project_ref"], props)
        return {**props, **_deployed_state(deployed)}

    @engine_values
    def create(self, props: dict[str, Any]) -> CreateResult:
        return CreateResult(id_=props["slug"], outs=self._deploy(props))

    @engine_values
    def update(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        if any(olds.get(k) != news.get(k) for k in CONTENT_KEYS):
            return UpdateResult(outs=self._deploy(news))
        with from_inputs(news) as api:
            updated = edge_functions.set_verify_jwt(api, news["project_ref"], news["slug"], bool(news["verify_jwt"]))
        return UpdateResult(outs={**news, **_deployed_state({**olds, **updated})})

    @engine_values
    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        with from_inputs(props) as api:
            remote = edge_functions.read(api, props["project_ref"], props["slug"])
        if remote is None:
            return ReadResult(None, {})  # deleted outside the stack: the next up deploys it again
        return ReadResult(id_, {**props, "verify_jwt": remote.get("verify_jwt", props.get("verify_jwt")),
                                **_deployed_state(remote)})

    @engine_values
    def delete(self, _id: str, props: dict[str, Any]) -> None:
        with from_inputs(props) as api:
            edge_functions.delete(api, props["project_ref"], props["slug"])


class EdgeFunction(Resource, module="supabase", name="EdgeFunction"):
    version: pulumi.Output[int]

    def __init__(self, name: str, props: dict[str, Any], opts: pulumi.ResourceOptions | None = None):
        opts = pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(additional_secret_outputs=["access_token"]))
        super().__init__(EdgeFunctionProvider(), name,
                         {"version": None, "function_id": None, "ezbr_sha256": None, **props}, opts)
