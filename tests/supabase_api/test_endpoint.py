"""The organisation-wide access token goes to https://api.supabase.com, or, only when the
stack names allowUnlistedManagementApi, to another host; never in clear text over a
network. managementApiUrl used to accept http:// and any host, and the token went there."""

from __future__ import annotations

import pytest

from components.providers.function_secrets import FunctionSecretsProvider
from supagate.config.loading import SettingsError, load_settings
from supagate.supabase_api.client import ApiError, ManagementApi, RetryPolicy
from tests.loopback import LoopbackServer, QuietHandler

TOKEN = "sbp_org_wide_token_0123456789"
REF = "abcdefghijklmnopqrst"


class Recorder:
    """A loopback server that records every Authorization header it is sent."""

    def __init__(self):
        self.authorizations: list[str] = []
        recorder = self

        class Handler(QuietHandler):
            def do_GET(self):  # noqa: N802
                recorder.authorizations.append(self.headers.get("Authorization", ""))
                self.send_json(200, [])

            do_POST = do_GET

        self.loopback = LoopbackServer(Handler)
        self.url = self.loopback.url


@pytest.fixture
def recorder():
    running = Recorder()
    yield running
    running.loopback.close()


def test_the_token_is_not_sent_to_an_unlisted_host_without_the_flag(recorder):
    with pytest.raises(ApiError) as raised:
        ManagementApi(TOKEN, recorder.url, RetryPolicy(attempts=1, total=5))
    message = str(raised.value)
    assert "allowUnlistedManagementApi" in message and "organisation-wide access token" in message
    props = {"project_ref": REF, "api_url": recorder.url, "access_token": TOKEN, "secrets": {"HOOK_SECRET": "x"},
             "retry": {"attempts": 1, "total": 5}}
    with pytest.raises(ApiError, match="allowUnlistedManagementApi"):  # the providers' path too
        FunctionSecretsProvider().create(props)
    assert recorder.authorizations == []
    assert TOKEN not in message


def test_with_the_flag_a_loopback_mock_gets_the_calls(recorder):
    """The safe twin: the explicit opt-in every loopback test server in the suite uses."""
    with ManagementApi(TOKEN, recorder.url, RetryPolicy(attempts=1, total=5), allow_unlisted_api=True) as api:
        assert api.get(f"/v1/projects/{REF}/secrets") == []
    assert recorder.authorizations == [f"Bearer {TOKEN}"]


@pytest.mark.parametrize("url, flag, expected", [
    ("http://api.supabase.com", False, "is not https"),
    ("http://api.example.net", True, "is not https"),  # the flag never allows clear text off loopback
    ("http://evil.localhost", True, "is not https"),  # a resolver may send *.localhost anywhere
    ("https://api.example.net", False, "allowUnlistedManagementApi"),
    ("https://api.supabase.com.example.net", False, "allowUnlistedManagementApi"),
    ("https://api.supabase.com:8443", False, "allowUnlistedManagementApi"),
    ("https://api.supabase.com@example.net", False, "not a bare https://host URL"),
    ("https://example.net/?api.supabase.com", True, "not a bare https://host URL"),
    ("ftp://api.supabase.com", False, "is not https"),
    # Where URL parsers disagree on the host: httpx would connect to evil.example for these two.
    ("https://api.supabase.com\\@evil.example", True, "not a bare https://host URL"),
    ("https://api.supabase.com;@evil.example", True, "not a bare https://host URL"),
    (" https://api.supabase.com", False, "not a bare https://host URL"),
    ("https://api.supabase.com./", False, "allowUnlistedManagementApi"),
])
def test_a_url_the_token_must_not_go_to_is_refused_by_the_client(url, flag, expected):
    with pytest.raises(ApiError, match=expected):
        ManagementApi(TOKEN, url, allow_unlisted_api=flag)


STAGING = {"tier": "staging", "projectRef": "a" * 20}


@pytest.mark.parametrize("values, expected", [
    ({"managementApiUrl": "https://api.example.net"}, "allowUnlistedManagementApi: true"),
    ({"managementApiUrl": "http://api.supabase.com"}, "is not https"),
    ({"managementApiUrl": "http://proxy.example.net", "allowUnlistedManagementApi": True}, "is not https"),
])
def test_the_stack_file_refuses_it_naming_the_key_the_flag_and_the_risk(values, expected):
    with pytest.raises(SettingsError) as raised:
        load_settings("staging", {**STAGING, **values}, "Pulumi.staging.yaml")
    message = str(raised.value)
    assert "Pulumi.staging.yaml" in message and "supabase-platform:managementApiUrl:" in message
    assert expected in message and "can change every project of the organisation" in message


@pytest.mark.parametrize("values", [
    {},
    {"managementApiUrl": "https://api.supabase.com/"},
    {"managementApiUrl": "https://proxy.example.net", "allowUnlistedManagementApi": True},
    {"managementApiUrl": "http://127.0.0.1:4010", "allowUnlistedManagementApi": "true"},
])
def test_the_listed_host_and_a_named_opt_in_load(values):
    settings = load_settings("staging", {**STAGING, **values}, "Pulumi.staging.yaml")
    assert settings.management_api_url.startswith(("https://", "http://127.0.0.1"))


def test_a_production_stack_cannot_send_the_token_elsewhere():
    """The opt-in is one line of the stack file a pull request edits: on production it would
    send prod's organisation-wide token to any https host, so it is refused there."""
    prod = {"tier": "production", "projectRef": "b" * 20, "noStagingReason": "test",
            "managementApiUrl": "https://api.supabase.com.attacker.example", "allowUnlistedManagementApi": True}
    with pytest.raises(SettingsError) as raised:
        load_settings("prod", prod, "Pulumi.prod.yaml")
    assert "allowUnlistedManagementApi on a production tier" in str(raised.value)
    settings = load_settings("prod", {k: v for k, v in prod.items()
                                      if k not in ("managementApiUrl", "allowUnlistedManagementApi")}, "Pulumi.prod.yaml")
    assert settings.management_api_url == "https://api.supabase.com"
