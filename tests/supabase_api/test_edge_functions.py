"""Edge function discovery and `deno check` (the real Deno from PyPI)."""

from __future__ import annotations

import shutil

import pytest

from supagate.supabase_api.edge_functions import EdgeFunctionSource, FunctionError, deno_check, discover
from supagate.config.models import FunctionOverride
from tests.conftest import APP, ROOT

TERRA = {"webhook-terra": FunctionOverride(signature_header="terra-signature")}


def test_every_app_function_type_checks_as_deployed():
    functions = discover(APP / "supabase", TERRA)
    assert [f.slug for f in functions] == ["flags", "health-check", "job-worker", "momentum-score-calculator",
                                          "webhook-terra"]
    for function in functions:
        deno_check(function)  # raises with the compiler's message on failure


def test_a_type_error_fails_with_the_compilers_message():
    broken = EdgeFunctionSource(slug="broken", entrypoint="broken/index.ts", verify_jwt=True, files={
        "broken/index.ts": 'const answer: number = "forty-two";\nDeno.serve(() => new Response(String(answer)));\n'})
    with pytest.raises(FunctionError) as raised:
        deno_check(broken)
    message = str(raised.value)
    assert "failed to check edge function broken" in message
    assert "TS2322" in message and "broken/index.ts:1" in message and "/tmp/" not in message


def _copy_app(tmp_path):
    shutil.copytree(APP / "supabase" / "functions", tmp_path / "functions")
    shutil.copy(APP / "supabase" / "config.toml", tmp_path / "config.toml")
    return tmp_path


def test_unverified_function_needs_a_signature_header_and_overrides_need_a_folder(tmp_path):
    root = _copy_app(tmp_path)
    with pytest.raises(FunctionError) as raised:
        discover(root, {"no-such-fn": FunctionOverride(verify_jwt=True)})
    message = str(raised.value)
    assert "functions.webhook-terra: verify_jwt is off" in message and "signatureHeader" in message
    assert "functions.no-such-fn: the stack overrides a function that has no folder" in message


def test_bundle_holds_shared_imports_and_the_hash_follows_the_content(tmp_path):
    root = _copy_app(tmp_path)
    before = {f.slug: f for f in discover(root, TERRA)}
    # The function's folder and the whole shared folder it imports from, nothing else.
    shared = {f"_shared/{p.name}" for p in (root / "functions" / "_shared").iterdir()}
    assert "_shared/supabase.ts" in shared
    assert set(before["job-worker"].files) == {"job-worker/index.ts", *shared}
    (root / "functions" / "_shared" / "supabase.ts").write_text("// changed\n", encoding="utf-8")
    after = {f.slug: f for f in discover(root, TERRA)}
    assert all(after[s].content_sha256 != before[s].content_sha256 for s in after)
    flipped = {f.slug: f for f in discover(root, {**TERRA, "job-worker": FunctionOverride(verify_jwt=False,
                                                                                   signature_header="x-sig")})}
    assert flipped["job-worker"].verify_jwt is False
    assert flipped["job-worker"].content_sha256 == after["job-worker"].content_sha256  # verify_jwt is not content
