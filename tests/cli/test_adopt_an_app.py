"""A team adopts the product with their own app: a copy of this project with the example
replaced by a realistic app (accounts and memberships, definer RPCs, avatars in storage, a
webhook function without JWT, its own pgTAP suite with a seed and a setup file), then
`supagate init`, `check` and `plan` for both stacks, and `test`, with no edit to the
product's own files."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.cli.test_cli import supagate
from tests.conftest import ROOT

APP = Path(__file__).resolve().parents[1] / "gates" / "apps" / "saas-starter" / "migrations"
PGTAP = """begin;
create extension if not exists pgtap with schema extensions;
select plan(3);
select has_table('public', 'accounts', 'accounts exist');
select is((select count(*) from public.accounts)::int, 1, 'the seed created one account');
select has_table('public', 'setup_marker', 'the setup file ran first');
select * from finish();
rollback;
"""


@pytest.fixture(scope="module")
def adopted(tmp_path_factory, pack_python):
    # A fresh clone (the tracked files), with the example in supabase/ replaced by the app.
    root = tmp_path_factory.mktemp("adopt") / "project"
    tracked = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, text=True, check=True)
    for name in filter(None, tracked.stdout.split("\0")):
        if (ROOT / name).is_file():
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, root / name)
    (root / "node_modules").symlink_to(ROOT / "node_modules")  # as scripts/setup leaves a clone
    supabase = root / "supabase"
    shutil.rmtree(supabase)
    shutil.copytree(APP, supabase / "migrations")
    (supabase / "config.toml").write_text(
        'project_id = "acme-app"\n[api]\nschemas = ["public", "graphql_public"]\nmax_rows = 500\n'
        '[auth]\njwt_expiry = 3600\nminimum_password_length = 12\n[db.seed]\nsql_paths = ["./seed.sql"]\n'
        '[functions.stripe-webhook]\nverify_jwt = false\n')
    (supabase / "seed.sql").write_text(
        "insert into auth.users (id, email, aud, role) values ('00000000-0000-4000-a000-000000000001', "
        "'owner@example.com', 'authenticated', 'authenticated');\n"
        "insert into public.accounts (id, primary_owner_user_id, name, slug) values "
        "(extensions.uuid_generate_v4(), '00000000-0000-4000-a000-000000000001', 'Acme', 'acme');\n")
    (supabase / "functions" / "stripe-webhook").mkdir(parents=True)
    (supabase / "functions" / "stripe-webhook" / "index.ts").write_text(
        "Deno.serve(async (req) => new Response(req.headers.get('stripe-signature') ? 'ok' : 'no', {status: 200}));\n")
    (supabase / "tests" / "database").mkdir(parents=True)
    (supabase / "tests" / "setup.sql").write_text("create table public.setup_marker (ok boolean);\n"
                                                  "alter table public.setup_marker enable row level security;\n")
    (supabase / "tests" / "database" / "accounts.test.sql").write_text(PGTAP)
    return root, {"SUPAGATE_PACK_VENV": str(Path(pack_python).parent.parent)}


def test_init_then_check_plan_and_test_work_on_the_adopted_app(adopted):
    """Runs first (the next test reuses the adopted project)."""
    root, env = adopted
    # --force: the clone's stack files, pack configs and workflows are the example's.
    args = ["init", "--force", "--staging-ref", "stagingacmeappabcdef", "--prod-ref", "prodacmeappabcdefghi", "--org", "acme",
            "--repository", "acme/app", "--signature-header", "stripe-webhook=stripe-signature",
            "--reviewer", "acme/release-approvers", "--allowed-cidr", "203.0.113.0/24"]
    init = supagate(*args, cwd=root)
    assert init.returncode == 0, init.stderr
    assert "Pulumi.staging.yaml" in init.stdout and "pulumi config set --secret dbUrl" in init.stdout
    again = supagate(*args, cwd=root)
    assert again.returncode == 0 and "nothing to write" in again.stdout  # idempotent, even with --force
    clash = supagate("init", "--staging-ref", "otherotherotherother", "--prod-ref", "prodacmeappabcdefghi",
                     "--org", "acme", cwd=root)
    assert clash.returncode == 2 and "--force" in clash.stderr  # never overwrites silently
    pack = json.loads((root / "policies" / "config" / "prod.json").read_text())
    assert pack["supabase-functions-require-jwt"]["allowUnverified"] == ["stripe-webhook"]

    for stack in ("staging", "prod"):
        check = supagate("check", "--stack", stack, "--no-advisors", "--format", "json", cwd=root, env=env)
        assert check.returncode == 0, check.stderr
        # Before the secrets are set the real load would fail, and so does plan, with the lines to run.
        unset = supagate("plan", "--stack", stack, cwd=root, env=env)
        assert unset.returncode == 2 and "Traceback" not in unset.stderr
        assert f"pulumi config set --secret dbUrl VALUE --stack {stack}" in unset.stderr
        set_secrets_as_the_cli_does(root / f"Pulumi.{stack}.yaml")
        plan = supagate("plan", "--stack", stack, "--format", "json", cwd=root, env=env)
        assert plan.returncode == 0, plan.stderr
        assert json.loads(plan.stdout)["blocked"] is False
    tested = supagate("test", "--setup", "supabase/tests/setup.sql", "--format", "json", cwd=root)
    assert tested.returncode == 0, tested.stderr
    assert json.loads(tested.stdout)["assertions"] == 3


def set_secrets_as_the_cli_does(stack_file: Path) -> None:
    """What `pulumi config set --secret dbUrl ...` leaves in the stack file: ciphertext."""
    text = stack_file.read_text()
    for key in ("dbUrl", "supabaseAccessToken"):
        text = text.replace("config:\n", f"config:\n  supabase-platform:{key}:\n    secure: v1:Zm9vYmFy:YmFzZTY0Y2lwaGVy\n", 1)
    text = text.replace("config:\n", "config:\n  supabase-platform:functionSecrets:\n"
                        "    RATE_LIMIT_PROBE_SECRET:\n      secure: v1:Zm9vYmFy:cHJvYmU=\n", 1)
    text = text.replace("config:\n", "config:\n  supabase-platform:alertSecrets:\n"
                        "    ONCALL_WEBHOOK_URL:\n      secure: v1:Zm9vYmFy:aG9va3VybA==\n"
                        "    ONCALL_WEBHOOK_HMAC:\n      secure: v1:Zm9vYmFy:aG1hY2tleQ==\n", 1)
    stack_file.write_text(text)


def test_the_products_tests_do_not_read_the_adopted_app(adopted):
    """The product's tests read their own fixture app: with another app in supabase/ and
    other stack files, they pass unchanged (the suites that used to read the example)."""
    import sys

    root, _ = adopted
    suites = ["tests/config", "tests/offline", "tests/gates/test_registry.py", "tests/delivery/test_workflows.py",
              "tests/example_app", "tests/postgres/test_pgtap.py", "tests/supabase_api/test_edge_functions.py"]
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", *suites], cwd=root,
                         capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stdout[-3000:]


def test_plan_repairs_a_half_built_pack_environment(adopted):
    """A first build that failed half-way leaves policies/.venv without pulumi; the next plan
    must sync it (as the engine's uv toolchain does), not start a pack that cannot import."""
    root, _ = adopted
    venv = root / "policies" / ".venv"
    shutil.rmtree(venv, ignore_errors=True)
    subprocess.run(["uv", "venv", "-q", str(venv)], check=True, capture_output=True)
    plan = supagate("plan", "--stack", "staging", "--format", "json", cwd=root,
                    env={"SUPAGATE_PACK_VENV": ""})
    assert plan.returncode == 0, plan.stderr
    assert "Syncing the policy pack's virtualenv" in plan.stderr
