"""The client and each provider's create, read, diff, update and delete against Prism
serving the vendored spec: every request they send must validate against it."""

from __future__ import annotations

import hashlib

import pytest

from components.providers.edge_function import EdgeFunctionProvider
from components.providers.function_secrets import FunctionSecretsProvider
from components.providers.project_settings import ProjectSettingsProvider
from supagate.supabase_api import function_secrets
from supagate.supabase_api.edge_functions import discover
from supagate.supabase_api.client import ManagementApi
from supagate.supabase_api.areas import POSTGRES_PARAMETERS
from supagate.config.loading import settings_from_stack_file
from supagate.supabase_api.project_settings import desired_state
from tests.conftest import APP, ROOT
from tests.supabase_api.conftest import REF, SPEC, SPEC_SHA256

TOKEN = "sbp_contract_token_0123456789"


@pytest.fixture
def api(validated_api):
    url, recorder = validated_api
    recorder.reset()
    yield url, recorder
    assert recorder.violations == [], "requests that do not match the spec:\n" + "\n".join(recorder.violations)


def _common(url: str) -> dict:
    return {"project_ref": REF, "api_url": url, "allow_unlisted_api": True, "access_token": TOKEN,
            "retry": {"attempts": 2, "timeout": 10, "total": 20, "backoff": 0.1}}


def test_the_vendored_spec_is_the_pinned_one():
    assert hashlib.sha256(SPEC.read_bytes()).hexdigest() == SPEC_SHA256


def test_postgres_parameters_are_the_api_body_keys():
    import json

    spec = json.loads(SPEC.read_text())
    body = spec["components"]["schemas"]["UpdatePostgresConfigBody"]["properties"]
    assert set(POSTGRES_PARAMETERS) == set(body) - {"restart_database"}
    kinds = {"string": str, "integer": int, "boolean": bool}
    assert {k: kinds[v["type"]] for k, v in body.items() if k != "restart_database"} == POSTGRES_PARAMETERS


@pytest.mark.parametrize("stack", ["staging", "prod"])
def test_project_settings_provider_lifecycle(api, stack):
    url, recorder = api
    settings = settings_from_stack_file(stack, APP / f"Pulumi.{stack}.yaml")
    props = {**_common(url), **desired_state(settings), "allow_restart": False}
    provider = ProjectSettingsProvider()
    created = provider.create(props)
    assert created.id == REF
    sent = {r for r in recorder.requests if r[0] != "GET"}
    base = f"/v1/projects/{REF}"
    # Prism's examples differ from the declared values except SSL (its example is already
    # enforced), so every declared area but that one is sent.
    expected = {("PUT", f"{base}/config/database/postgres"), ("PATCH", f"{base}/config/auth"),
                ("PATCH", f"{base}/postgrest"), ("PATCH", f"{base}/config/database/pooler"),
                ("PATCH", f"{base}/config/storage")}
    if stack == "prod":
        expected.add(("POST", f"{base}/network-restrictions/apply"))
    assert sent == expected
    assert ("GET", f"{base}/health") in recorder.requests
    read = provider.read(REF, created.outs)
    assert set(read.outs["auth"]) == set(props["auth"])  # only declared keys come back
    changed = {**props, "auth": {**props["auth"], "jwt_exp": 1800}}
    diff = provider.diff(REF, created.outs, changed)
    assert diff.changes and not diff.replaces
    assert provider.diff(REF, created.outs, props).changes is False
    recorder.reset()
    provider.update(REF, created.outs, changed)
    assert ("PATCH", f"{base}/config/auth") in recorder.requests
    recorder.reset()
    provider.delete(REF, created.outs)
    assert recorder.requests == []  # the project is left as it is


def test_edge_function_provider_lifecycle(api):
    url, recorder = api
    settings = settings_from_stack_file("prod", APP / "Pulumi.prod.yaml")
    webhook = next(f for f in discover(APP / "supabase", settings.functions) if f.slug == "webhook-terra")
    props = {**_common(url), **webhook.inputs()}
    provider = EdgeFunctionProvider()
    assert provider.check({}, props).failures == []  # deno check of the real function
    created = provider.create(props)
    base = f"/v1/projects/{REF}/functions"
    assert ("POST", f"{base}/deploy") in recorder.requests
    # Prism's example deploy answer says verify_jwt true; the function wants false: PATCHed.
    assert ("PATCH", f"{base}/webhook-terra") in recorder.requests
    recorder.reset()
    only_jwt = {**props, "verify_jwt": True}
    diff = provider.diff("webhook-terra", created.outs, only_jwt)
    assert diff.changes and not diff.replaces
    provider.update("webhook-terra", created.outs, only_jwt)
    assert recorder.requests == [("PATCH", f"{base}/webhook-terra")]  # no redeploy for verify_jwt alone
    provider.read("webhook-terra", created.outs)
    provider.delete("webhook-terra", created.outs)
    assert recorder.requests[-2:] == [("GET", f"{base}/webhook-terra"), ("DELETE", f"{base}/webhook-terra")]


def test_function_secrets_provider_lifecycle_and_bulk_delete(api):
    url, recorder = api
    props = {**_common(url), "secrets": {"TERRA_WEBHOOK_SECRET": "whsec_contract_value"}}
    provider = FunctionSecretsProvider()
    created = provider.create(props)
    base = f"/v1/projects/{REF}/secrets"
    assert recorder.requests == [("GET", base), ("POST", base)]
    assert provider.diff("x", created.outs, props).changes is False
    provider.read("x", created.outs)
    with ManagementApi(TOKEN, url, allow_unlisted_api=True) as client:  # the bulk delete body, against the spec
        function_secrets.apply(client, REF, {}, function_secrets.SecretsPlan(delete=["OLD_SECRET"]))
    assert recorder.requests[-1] == ("DELETE", base)


def test_the_harness_fails_a_request_the_spec_rejects(validated_api):
    from supagate.supabase_api.client import ApiError

    url, recorder = validated_api
    recorder.reset()
    with ManagementApi(TOKEN, url, allow_unlisted_api=True) as client, pytest.raises(ApiError) as raised:
        client.request("PATCH", f"/v1/projects/{REF}/config/auth", json_body={"jwt_exp": "an hour"})
    assert "HTTP 422" in str(raised.value) and TOKEN not in str(raised.value)
    assert len(recorder.violations) == 1 and "jwt_exp" in recorder.violations[0]
    recorder.reset()
    with ManagementApi(TOKEN, url, allow_unlisted_api=True) as client, pytest.raises(ApiError):
        client.request("POST", f"/v1/projects/{REF}/functions/deploy", params={"slug": "9bad"},
                       files=[("metadata", (None, b'{"verify_jwt": "yes"}', "application/json"))])
    assert any("entrypoint_path is required" in v for v in recorder.violations)
    assert any("slug '9bad'" in v for v in recorder.violations)
    recorder.reset()
