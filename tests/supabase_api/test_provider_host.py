"""The Management API providers in the SDK's own provider host, driven over gRPC as the
engine drives them, against Prism serving the vendored spec: numbers arrive as doubles
and must leave as integers; secrets arrive stripped."""

from __future__ import annotations

import json

from components.providers.edge_function import EdgeFunctionProvider
from components.providers.function_secrets import FunctionSecretsProvider
from components.providers.project_settings import ProjectSettingsProvider
from supagate.supabase_api.edge_functions import discover
from tests.conftest import APP, ROOT
from tests.provider_host import ProviderHost, without_provider
from tests.supabase_api.conftest import REF

URN = "urn:pulumi:prod::supabase-platform::pulumi-python:dynamic/supabase:{}::project-{}"


def _common(url: str) -> dict:
    return {"project_ref": REF, "api_url": url, "allow_unlisted_api": True, "access_token": "sbp_host_token",
            "retry": {"attempts": 2, "timeout": 10, "total": 30}}


def test_project_settings_through_the_host_send_integers(validated_api):
    url, recorder = validated_api
    recorder.reset()
    props = {**_common(url), "auth": {"jwt_exp": 3600, "password_min_length": 12}, "postgrest": {"max_rows": 500},
             "allow_restart": False, "health_interval": 0}
    with ProviderHost(ProjectSettingsProvider(), URN.format("ProjectSettings", "settings")) as host:
        assert host.configure().acceptSecrets is False
        inputs, failures = host.check({}, props)
        assert failures == []
        id_, outs = host.create(without_provider(inputs))
        assert id_ == REF and outs["auth"]["jwt_exp"] == 3600
        restart, failures = host.check(without_provider(outs), {**props, "postgres": {"max_connections": 200}})
        assert failures == []  # not declared before: nothing to compare
        _, failures = host.check({**without_provider(outs), "postgres": {"max_connections": 100}},
                                 {**props, "postgres": {"max_connections": 200}})
        assert failures and "restart" in failures[0][1]  # refused at preview, not half-way through up
    assert recorder.violations == []
    sent = [json.loads(body) for (method, path), body in zip(recorder.requests, recorder.bodies)
            if method == "PATCH" and body]
    numbers = [v for body in sent for v in body.values() if isinstance(v, (int, float)) and not isinstance(v, bool)]
    assert numbers and all(isinstance(v, int) for v in numbers), sent
    assert all(".0" not in body.decode() for body in recorder.bodies if body)


def test_secrets_and_functions_through_the_host(validated_api):
    url, recorder = validated_api
    recorder.reset()
    with ProviderHost(FunctionSecretsProvider(), URN.format("FunctionSecrets", "secrets")) as host:
        host.configure()
        inputs, _ = host.check({}, {**_common(url), "secrets": {"TERRA_WEBHOOK_SECRET": "whsec_host"}})
        assert inputs["secret_names"] == ["TERRA_WEBHOOK_SECRET"]  # the preview names what changes
        _, outs = host.create(without_provider(inputs))
        assert outs["names"] == ["TERRA_WEBHOOK_SECRET"]
        host.delete("secrets", without_provider(outs))
    from supagate.config.loading import settings_from_stack_file

    overrides = settings_from_stack_file("prod", APP / "Pulumi.prod.yaml").functions
    function = next(f for f in discover(APP / "supabase", overrides) if f.slug == "health-check")
    with ProviderHost(EdgeFunctionProvider(), URN.format("EdgeFunction", "fn-health-check")) as host:
        host.configure()
        inputs, failures = host.check({}, {**_common(url), **function.inputs()})
        assert failures == []  # deno check ran in the host
        id_, outs = host.create(without_provider(inputs))
        assert id_ == "health-check" and isinstance(outs.get("version"), (int, float, type(None)))
        assert host.diff(id_, without_provider(outs), without_provider(inputs)).changes == 1
    assert recorder.violations == []
