"""The engine's provider host unpickles each dynamic provider in a new process started
from the project root: the classes must be importable there and hold no client."""

from __future__ import annotations

import base64
import json
import subprocess
import sys

import dill
import pytest
from pulumi.dynamic.dynamic import serialize_provider

from components.providers.edge_function import EdgeFunctionProvider
from components.providers.function_secrets import FunctionSecretsProvider
from components.providers.project_settings import ProjectSettingsProvider
from tests.conftest import ROOT
from tests.supabase_api.conftest import REF

SCRIPT = (
    "import base64, dill, json, sys\n"
    "provider = dill.loads(base64.b64decode(sys.argv[1]))\n"
    "props = json.loads(sys.stdin.read())\n"
    "print(json.dumps(provider.create(props).outs.get('names')))\n")


@pytest.mark.parametrize("provider", [ProjectSettingsProvider, EdgeFunctionProvider, FunctionSecretsProvider])
def test_provider_pickles_by_reference_without_a_client(provider):
    blob = base64.b64decode(serialize_provider(provider()))
    assert b"httpx" not in blob and len(blob) < 4096, "the provider carries state"
    assert type(dill.loads(blob)).__module__ == provider.__module__


def test_secrets_provider_runs_from_its_serialized_form_in_a_fresh_process(validated_api):
    url, recorder = validated_api
    recorder.reset()
    props = {"project_ref": REF, "api_url": url, "allow_unlisted_api": True, "access_token": "sbp_serialized",
             "secrets": {"TERRA_WEBHOOK_SECRET": "whsec_serialized"}}
    run = subprocess.run([sys.executable, "-c", SCRIPT, serialize_provider(FunctionSecretsProvider())],
                         input=json.dumps(props), capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout) == ["TERRA_WEBHOOK_SECRET"]
    assert recorder.violations == [] and ("POST", f"/v1/projects/{REF}/secrets") in recorder.requests
