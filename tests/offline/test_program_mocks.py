"""The Pulumi program under the SDK's mock runtime, one fresh process per stack."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import yaml

from supagate.offline.program import is_secret
from tests.conftest import APP, PROJECT, ROOT

DB_PASSWORD = "s3cr3t-db-pw"
WEBHOOK_SECRET = "whsec-never-in-plain-state"
ACCESS_TOKEN = "sbp_0123456789abcdef-never-in-plain-state"
HOOK_URL = "https://hooks.example.com/T0/never-in-plain-state"
HOOK_KEY = "hmac-never-in-plain-state"


def stack_config(stack: str) -> dict:
    document = yaml.safe_load((APP / f"Pulumi.{stack}.yaml").read_text())["config"]
    config = {key.split(":", 1)[1]: value for key, value in document.items()}
    config["dbUrl"] = f"postgresql://postgres:{DB_PASSWORD}@db.example.supabase.co:5432/postgres"
    config["functionSecrets"] = {"TERRA_WEBHOOK_SECRET": WEBHOOK_SECRET, "RATE_LIMIT_PROBE_SECRET": "probe-never-in-plain"}
    config["supabaseAccessToken"] = ACCESS_TOKEN
    config["alertSecrets"] = {"ONCALL_WEBHOOK_URL": HOOK_URL, "ONCALL_WEBHOOK_HMAC": HOOK_KEY}
    return config


SECRET_KEYS = ["dbUrl", "functionSecrets", "supabaseAccessToken", "pulumiAccessToken", "verifyDbUrl", "githubToken",
               "alertSecrets"]


def run_program(stack: str, config: dict, stack_outputs: dict | None = None, secret_keys=SECRET_KEYS) -> dict:
    request = {"root": str(PROJECT), "stack": stack, "config": config, "secret_keys": list(secret_keys),
               "stack_outputs": stack_outputs}
    proc = subprocess.run([sys.executable, "-m", "supagate.offline.program"], input=json.dumps(request),
                          capture_output=True, text=True, cwd=PROJECT, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


@pytest.fixture(scope="module", params=["staging", "prod"])
def evaluated(request):
    return request.param, run_program(request.param, stack_config(request.param))


def test_program_registers_the_database_component_and_its_migrations(evaluated):
    stack, result = evaluated
    assert result["error"] is None
    types = {(r["type"], r["name"]) for r in result["registrations"]}
    assert ("supabase-platform:database:Database", "database") in types
    assert ("pulumi-python:dynamic/supabase:Migrations", "database-migrations") in types


def test_every_child_has_its_component_as_parent(evaluated):
    _, result = evaluated
    by_urn = {r["urn"]: r for r in result["registrations"]}
    for r in result["registrations"]:
        if r["custom"] and r["type"] != "pulumi:pulumi:StackReference":  # a read, not a managed resource
            parent = by_urn.get(r["parent"])
            assert parent is not None and not parent["custom"], f"{r['name']} is not inside a component"
            assert parent["type"].startswith("supabase-platform:")
            assert r["name"].startswith(parent["name"] + "-")


def test_prod_reads_staging_checksums_through_a_stack_reference():
    outputs = {"momentum-health/supabase-platform/staging": {"migrationChecksums": {"20250101000000": "abc"},
                                                             "functionHashes": {"health-check": "def"}}}
    result = run_program("prod", stack_config("prod"), outputs)
    reference = [r for r in result["registrations"] if r["type"] == "pulumi:pulumi:StackReference"]
    assert [r["name"] for r in reference] == ["momentum-health/supabase-platform/staging"]
    migrations = next(r for r in result["registrations"] if r["type"].endswith("supabase:Migrations"))
    promotion = migrations["inputs"]["promotion"]
    assert {k: promotion[k] for k in ("stack", "checksums", "function_hashes")} == {
        "stack": "momentum-health/supabase-platform/staging", "checksums": {"20250101000000": "abc"},
        "function_hashes": {"health-check": "def"}}
    # This deploy's function hashes ride along, so the resource policy sees them in the inputs.
    assert set(promotion["deploying_functions"]) == {p.name for p in (APP / "supabase" / "functions").iterdir()
                                                     if p.is_dir() and not p.name.startswith("_")}
    staging = run_program("staging", stack_config("staging"))
    migrations = next(r for r in staging["registrations"] if r["type"].endswith("supabase:Migrations"))
    assert "promotion" not in migrations["inputs"]


def test_migration_inputs_carry_every_file_and_its_checksum(evaluated):
    _, result = evaluated
    migrations = next(r for r in result["registrations"] if r["name"] == "database-migrations")
    files = sorted(p.name for p in (APP / "supabase" / "migrations").glob("*.sql"))
    listed = [f"{m['version']}_{m['name']}.sql" for m in migrations["inputs"]["migrations"]]
    assert listed == files
    assert all(len(m["checksum"]) == 64 and m["sql"] for m in migrations["inputs"]["migrations"])


def test_no_secret_in_a_plain_input(evaluated):
    _, result = evaluated

    def plain_strings(value):
        if is_secret(value):
            return
        if isinstance(value, dict):
            for v in value.values():
                yield from plain_strings(v)
        elif isinstance(value, list):
            for v in value:
                yield from plain_strings(v)
        elif isinstance(value, str):
            yield value

    for r in result["registrations"]:
        for text in plain_strings(r["inputs"]):
            for secret in (DB_PASSWORD, WEBHOOK_SECRET, ACCESS_TOKEN, HOOK_URL, HOOK_KEY):
                assert secret not in text, f"secret in plain input of {r['name']}"
    migrations = next(r for r in result["registrations"] if r["name"] == "database-migrations")
    assert is_secret(migrations["inputs"]["db_url"])
    assert "db_url" in migrations["additional_secret_outputs"]


def test_one_function_resource_per_function_folder(evaluated):
    _, result = evaluated
    folders = sorted(p.name for p in (APP / "supabase" / "functions").iterdir()
                     if p.is_dir() and not p.name.startswith("_"))
    functions = [r for r in result["registrations"] if r["type"] == "pulumi-python:dynamic/supabase:EdgeFunction"]
    assert sorted(r["inputs"]["slug"] for r in functions) == folders
    by_slug = {r["inputs"]["slug"]: r["inputs"] for r in functions}
    assert by_slug["webhook-terra"]["verify_jwt"] is False
    assert by_slug["webhook-terra"]["signature_header"] == "terra-signature"
    assert all(i["verify_jwt"] for s, i in by_slug.items() if s != "webhook-terra")
    # The bundle holds the function and the shared code it imports, paths as deployed.
    assert {"health-check/index.ts", "_shared/supabase.ts"} <= set(by_slug["health-check"]["files"])
    assert all(is_secret(r["inputs"]["access_token"]) and "access_token" in r["additional_secret_outputs"]
               for r in functions)


def test_project_settings_are_the_stack_declarations(evaluated):
    stack, result = evaluated
    settings = next(r for r in result["registrations"]
                    if r["type"] == "pulumi-python:dynamic/supabase:ProjectSettings")["inputs"]
    declared = yaml.safe_load((APP / f"Pulumi.{stack}.yaml").read_text())["config"]
    assert settings["project_ref"] == declared["supabase-platform:projectRef"]
    assert settings["auth"]["jwt_exp"] == declared["supabase-platform:auth"]["jwtExpiry"]
    assert settings["auth"]["password_min_length"] == declared["supabase-platform:auth"]["passwordMinLength"]
    assert settings["postgrest"] == {"db_schema": "public,graphql_public",
                                     "max_rows": declared["supabase-platform:maxRows"]}
    assert settings["postgres"] == declared["supabase-platform:postgres"]
    assert "rate_limit_email_sent" not in settings["auth"]  # not declared: not managed
    if stack == "prod":
        assert settings["network_restrictions"]["dbAllowedCidrs"] == ["198.51.100.10/32", "203.0.113.0/24"]
    else:
        assert "network_restrictions" not in settings  # [] means not managed


def test_function_secrets_are_secret_and_only_the_declared_names(evaluated):
    _, result = evaluated
    secrets = next(r for r in result["registrations"]
                   if r["type"] == "pulumi-python:dynamic/supabase:FunctionSecrets")
    assert is_secret(secrets["inputs"]["secrets"])
    assert {"secrets", "access_token"} <= set(secrets["additional_secret_outputs"])
    value = secrets["inputs"]["secrets"]["value"]
    assert set(value) == {"TERRA_WEBHOOK_SECRET", "RATE_LIMIT_PROBE_SECRET", "HEALTH_MAX_OVERDUE_JOBS",
                          "HEALTH_MAX_DEAD_LETTERS_24H"}


def test_the_health_function_gets_the_stacks_thresholds():
    """monitoring.maxOverdueJobs / maxDeadLetters24h reach the probed function's environment
    (staging declares 50/20; the function's own defaults are 25/10)."""
    def env_of(config):
        result = run_program("staging", config)
        secrets = next(r for r in result["registrations"]
                       if r["type"] == "pulumi-python:dynamic/supabase:FunctionSecrets")
        return secrets["inputs"]["secrets"]["value"]

    config = stack_config("staging")
    value = env_of(config)
    assert (value["HEALTH_MAX_OVERDUE_JOBS"], value["HEALTH_MAX_DEAD_LETTERS_24H"]) == ("50", "20")
    config["monitoring"] = {**config["monitoring"], "maxOverdueJobs": 7}
    assert env_of(config)["HEALTH_MAX_OVERDUE_JOBS"] == "7"
    config["monitoring"] = {**config["monitoring"], "healthUrl": "https://status.example.com/ping"}
    assert "HEALTH_MAX_OVERDUE_JOBS" not in env_of(config)  # not one of the app's functions
    source = (PROJECT / "supabase" / "functions" / "health-check" / "index.ts").read_text()
    thresholds = ("HEALTH_MAX_OVERDUE_JOBS", "HEALTH_MAX_DEAD_LETTERS_24H")
    assert all(f'Deno.env.get("{name}")' in source for name in thresholds)  # the names the function reads


def test_operations_are_resources_and_the_monitoring_thresholds_reach_the_rules():
    """Alert rules, channels and maintenance jobs (the stack's and supagate's own) register
    under the Operations component, each holding the database URL as a secret; staging's
    maxOverdueJobs is the overdue-jobs rule's threshold."""
    config = stack_config("staging")
    result = run_program("staging", config)
    assert result["error"] is None
    rules = {r["inputs"]["name"]: r for r in _of_type(result, "pulumi-python:dynamic/supabase:AlertRule")}
    jobs = {r["inputs"]["name"]: r for r in _of_type(result, "pulumi-python:dynamic/supabase:CronJob")}
    channels = {r["inputs"]["name"] for r in _of_type(result, "pulumi-python:dynamic/supabase:AlertChannel")}
    assert channels == {"oncall", "issues"} and len(rules) == 13
    assert rules["overdue-jobs"]["inputs"]["rule"]["threshold"] == 50
    assert set(jobs) == {"vacuum-engagement-events", "vacuum-background-jobs", "refresh-latest-unified-metrics",
                         "cleanup-rate-limits", "supagate-evaluate-alerts", "supagate-heartbeat",
                         "supagate-purge-cron-history"}  # no auto rollout, so no rollout job
    assert jobs["vacuum-engagement-events"]["inputs"]["command"] == "VACUUM (ANALYZE) public.engagement_events"
    assert "(04:30 Europe/Berlin)" in jobs["vacuum-engagement-events"]["inputs"]["next_runs"]
    for resource in [*rules.values(), *jobs.values()]:
        assert is_secret(resource["inputs"]["db_url"]) and "db_url" in resource["additional_secret_outputs"]
    component = next(r for r in result["registrations"] if r["type"] == "supabase-platform:operations:Operations")
    assert all(r["parent"] == component["urn"] for r in [*rules.values(), *jobs.values()])

    (seed,) = _of_type(result, "pulumi-python:dynamic/supabase:Seed")
    assert seed["inputs"]["tier"] == "staging" and [f["path"] for f in seed["inputs"]["files"]] == ["supabase/seed.sql"]
    (marker,) = _of_type(result, "pulumi-python:dynamic/supabase:DatabaseEnvironment")
    assert marker["inputs"]["tier"] == "staging"

    config["monitoring"] = {**config["monitoring"], "maxOverdueJobs": 7}
    rules = {r["inputs"]["name"]: r for r in _of_type(run_program("staging", config),
                                                       "pulumi-python:dynamic/supabase:AlertRule")}
    assert rules["overdue-jobs"]["inputs"]["rule"]["threshold"] == 7


def test_the_stacks_flags_are_resources_and_an_output():
    """featureFlags had no writer: now each flag is a FeatureFlag under Operations, safety
    flags included."""
    result = run_program("prod", stack_config("prod"))
    flags = {r["inputs"]["name"]: r["inputs"]["flag"] for r in _of_type(result, "pulumi-python:dynamic/supabase:FeatureFlag")}
    assert set(flags) == {"momentum_v2", "assessments_v2", "crisis_detection", "crisis_escalation", "coach_dashboard"}
    assert flags["momentum_v2"]["steps"] == [-1, 1000, 5000, 10000] and flags["momentum_v2"]["step"] == 1
    assert flags["assessments_v2"]["soak"] == "86400 seconds"
    assert flags["crisis_detection"]["kind"] == "safety" and flags["crisis_detection"]["enabled"] is True
    assert _of_type(result, "pulumi-python:dynamic/supabase:Seed") == []  # never on production
    (marker,) = _of_type(result, "pulumi-python:dynamic/supabase:DatabaseEnvironment")
    assert marker["inputs"]["tier"] == "production"


def test_rules_without_the_ops_schema_stop_the_preview():
    from components.operations import operations_args
    from supagate.config.loading import SettingsError, settings_from_stack_file
    from supagate.migrations.files import load_migrations

    settings = settings_from_stack_file("prod", APP / "Pulumi.prod.yaml")
    migrations = [m for m in load_migrations(APP / "supabase" / "migrations") if "supagate_ops" not in m.name]
    with pytest.raises(SettingsError, match="Run `supagate ops init`"):
        operations_args(settings, migrations)
    # An app that only uses pg_cron from its migrations still gets history retention.
    bare = settings.model_copy(update={"alerts": type(settings.alerts)(), "maintenance": type(settings.maintenance)(),
                                       "feature_flags": {}, "rate_limits": {}})
    args = operations_args(bare, migrations)
    assert list(args["jobs"]) == ["supagate-purge-cron-history"] and args["rules"] == []


def test_invalid_config_names_every_bad_key_and_registers_nothing():
    config = stack_config("prod")
    config["projectRef"] = "Not-A-Ref"
    config["auth"] = {**config["auth"], "jwtExpiry": 5, "siteUrl": "ftp://x"}
    config["networkRestrictions"] = ["10.0.0.300/8"]
    config["monitoring"] = {"maxOverdueJob": 3}
    config["secretNames"] = ["SUPABASE_URL"]
    result = run_program("prod", config)
    error = result["error"]
    for key in ("supabase-platform:projectRef", "supabase-platform:auth.jwtExpiry",
                "supabase-platform:auth.siteUrl", "supabase-platform:networkRestrictions",
                "supabase-platform:monitoring.maxOverdueJob", "supabase-platform:secretNames"):
        assert key in error, f"{key} missing from: {error}"
    assert "Pulumi.prod.yaml" in error
    assert [r for r in result["registrations"] if r["type"] != "pulumi:pulumi:Stack"] == []
    assert DB_PASSWORD not in error


def _of_type(result, token):
    return [r for r in result["registrations"] if r["type"] == token]


def _environments(result) -> dict[str, dict]:
    """environment -> its inputs, its deployment policies and the names of its secrets."""
    out = {r["inputs"]["environment"]: {"inputs": r["inputs"], "policies": set(), "secrets": set()}
           for r in _of_type(result, "github:index/repositoryEnvironment:RepositoryEnvironment")}
    for r in _of_type(result, "github:index/repositoryEnvironmentDeploymentPolicy:"
                              "RepositoryEnvironmentDeploymentPolicy"):
        out[r["inputs"]["environment"]]["policies"].add((r["inputs"].get("branchPattern"), r["inputs"].get("tagPattern")))
    for r in _of_type(result, "github:index/actionsEnvironmentSecret:ActionsEnvironmentSecret"):
        assert is_secret(r["inputs"]["value"]) and "plaintextValue" not in r["inputs"]
        out[r["inputs"]["environment"]]["secrets"].add(r["inputs"]["secretName"])
    return out


def test_delivery_environment_rules_and_secrets(evaluated):
    stack, result = evaluated
    environments = _environments(result)
    name = {"staging": "staging", "prod": "production"}[stack]
    assert set(environments) == {"staging": {"staging"}, "prod": {"production", "production-health"}}[stack]
    inputs = environments[name]["inputs"]
    assert inputs["canAdminsBypass"] is False
    for environment in environments.values():  # only the listed branches and tags deploy
        assert environment["inputs"]["deploymentBranchPolicy"] == {"customBranchPolicies": True,
                                                                   "protectedBranches": False}
    assert environments[name]["secrets"] == {"SUPABASE_DB_URL", "SUPABASE_ACCESS_TOKEN"}
    if stack == "prod":
        assert inputs["preventSelfReview"] is True and inputs["waitTimer"] == 10
        assert len(inputs["reviewers"]) == 1 and inputs["reviewers"][0]["teams"]
        assert all(isinstance(t, (int, float)) for t in inputs["reviewers"][0]["teams"])
        assert environments[name]["policies"] == {("main", None), (None, "v*")}
        # The health workflow's: main only, no reviewer (it runs every 5 minutes unattended).
        health = environments["production-health"]
        assert health["policies"] == {("main", None)} and health["inputs"]["reviewers"] == []
        assert health["secrets"] == {"ONCALL_WEBHOOK_URL", "ONCALL_WEBHOOK_HMAC"}
    else:
        assert inputs["reviewers"] == [] and environments[name]["policies"] == {("main", None)}


def test_prod_owns_the_ruleset_and_the_workflows_stay_in_the_repository(evaluated):
    """No resource writes to the branch the ruleset protects (GitHub would refuse it); the
    workflows are committed here and `workflows` is a required check."""
    stack, result = evaluated
    rulesets = _of_type(result, "github:index/repositoryRuleset:RepositoryRuleset")
    files = _of_type(result, "github:index/repositoryFile:RepositoryFile")
    if stack == "staging":
        assert rulesets == [] and files == []
        return
    rules = rulesets[0]["inputs"]["rules"]
    assert rulesets[0]["inputs"]["bypassActors"] == [] and rulesets[0]["inputs"]["enforcement"] == "active"
    assert rules["pullRequest"]["requiredApprovingReviewCount"] == 1
    assert rules["pullRequest"]["dismissStaleReviewsOnPush"] is True
    assert [c["context"] for c in rules["requiredStatusChecks"]["requiredChecks"]] == \
        ["tests", "app-tests", "gate", "workflows", "preview-staging", "preview-prod"]
    assert files == []


def test_snapshot_before_migrating_on_prod_and_verification_last(evaluated):
    stack, result = evaluated
    commands = {r["name"]: r["inputs"] for r in _of_type(result, "command:local:Command")}
    verify = commands["verification-verify"]
    assert verify["create"] == f"uv run supagate verify --stack {stack} --rate-limit"  # webhook-terra's limit is probed
    assert is_secret(verify["environment"])
    # What a command prints was read from the database: the state keeps it encrypted.
    declared = {r["name"]: set(r["additional_secret_outputs"]) for r in _of_type(result, "command:local:Command")}
    assert all(outputs >= {"environment", "stdout", "stderr"} for outputs in declared.values()), declared
    if stack == "prod":
        snapshot = commands["database-snapshot"]
        assert snapshot["create"] == "scripts/snapshot"  # the server's own pg_dump; tests/delivery/test_snapshot.py restores it
        assert "postgresql://" not in snapshot["create"] and is_secret(snapshot["environment"])
        assert snapshot["logging"] == "none"  # pg_dump's and psql's messages stay out of the deploy log
        # Never an input: scripts/snapshot inherits the recipients from deploy-prod's step.
        assert "SNAPSHOT_RECIPIENTS" not in snapshot["environment"]["value"]
        assert snapshot["triggers"] and verify["triggers"][0] == snapshot["triggers"][0]
        migrations = next(r for r in result["registrations"] if r["name"] == "database-migrations")
        assert is_secret(migrations["inputs"]["preflight"]) and "preflight" in migrations["additional_secret_outputs"]
        # backups.pitrEnabled: true reaches the pre-deploy checks
        assert migrations["inputs"]["preflight"]["value"]["limits"]["require_pitr"] is True
    else:
        assert "database-snapshot" not in commands


@pytest.mark.parametrize("stack", ["staging", "prod"])
def test_no_repository_secret_every_credential_in_an_environment(stack):
    """A repository secret reaches every same-repository branch, pull requests included; an
    environment's reaches only the refs its branch policy admits. Each secret lands where
    the generated workflows read it (supagate/delivery/environments.py)."""
    from supagate.delivery.environments import held_secrets

    config = {**stack_config(stack), "pulumiAccessToken": "pul-never-plain",
              "verifyDbUrl": "postgresql://verifier:ro-pw@db/postgres"}
    result = run_program(stack, config)
    assert _of_type(result, "github:index/actionsSecret:ActionsSecret") == []
    environments = _environments(result)
    held = held_secrets({"ONCALL_WEBHOOK_URL", "ONCALL_WEBHOOK_HMAC"})
    name = {"staging": "staging", "prod": "production"}[stack]
    # production also holds SNAPSHOT_RECIPIENTS, which an admin sets and no stack may write.
    assert environments[name]["secrets"] == held[name] - {"SNAPSHOT_RECIPIENTS"} == {
        "SUPABASE_DB_URL", "SUPABASE_ACCESS_TOKEN", "PULUMI_ACCESS_TOKEN"}
    if stack == "prod":
        assert environments["production-health"]["secrets"] == held["production-health"]
    else:
        assert "production-health" not in environments  # the prod stack's alone


def test_only_release_managers_create_release_tags():
    """deploy-prod runs for any `v*` tag: the prod stack's tag ruleset lets only release
    managers (default: the environment's reviewers) create, move or delete one."""
    config = stack_config("prod")
    rulesets = {r["inputs"]["name"]: r["inputs"] for r in
                _of_type(run_program("prod", config), "github:index/repositoryRuleset:RepositoryRuleset")}
    tags = rulesets["release tags"]
    assert tags["target"] == "tag" and tags["enforcement"] == "active"
    assert tags["conditions"]["refName"] == {"includes": ["refs/tags/v*"], "excludes": []}
    assert tags["rules"] == {"creation": True, "update": True, "deletion": True, "nonFastForward": True}
    reviewers = next(r["inputs"]["reviewers"][0]["teams"] for r in _of_type(
        run_program("prod", config), "github:index/repositoryEnvironment:RepositoryEnvironment")
        if r["inputs"]["environment"] == "production")
    assert [(a["actorType"], a["actorId"], a["bypassMode"]) for a in tags["bypassActors"]] == \
        [("Team", reviewers[0], "always")]
    config["github"] = {**config["github"], "releaseManagers": ["momentum-health/release-managers", "octocat"],
                        "environment": {**config["github"]["environment"], "deploymentTags": ["v*", "release-*"]}}
    tags = next(r["inputs"] for r in _of_type(run_program("prod", config), "github:index/repositoryRuleset:"
                                                                               "RepositoryRuleset")
                if r["inputs"]["name"] == "release tags")
    assert tags["conditions"]["refName"]["includes"] == ["refs/tags/release-*", "refs/tags/v*"]
    assert [a["actorType"] for a in tags["bypassActors"]] == ["Team", "User"]
    assert tags["bypassActors"][0]["actorId"] != reviewers[0]


def test_a_stack_cannot_choose_who_reads_the_snapshot():
    """Red team: a pull request set backups.snapshotRecipients to its own age key, plan passed,
    and the deploy uploaded prod's dump encrypted to it. The recipients are now the production
    environment's secret SNAPSHOT_RECIPIENTS, which an admin sets: the stack key is refused,
    and no resource of the stack writes that secret (or a variable of that name)."""
    attacker = "age1s5h6awsscxtaqc870u2wtsx9d36nfv6dgmulx2wkyx6njvdmxegs9n4e7x"
    config = stack_config("prod")
    config["backups"] = {**config["backups"], "snapshotRecipients": [attacker]}
    result = run_program("prod", config)
    assert "supabase-platform:backups.snapshotRecipients: the snapshot's age recipients are not read from the " \
           "stack" in result["error"]
    assert "gh secret set SNAPSHOT_RECIPIENTS --env production" in result["error"] and attacker not in result["error"]
    assert [r for r in result["registrations"] if r["type"] != "pulumi:pulumi:Stack"] == []
    honest = run_program("prod", stack_config("prod"))
    written = {r["inputs"].get("secretName") or r["inputs"].get("variableName") for r in honest["registrations"]
               if r["type"].startswith("github:index/actions")}
    assert "SNAPSHOT_RECIPIENTS" not in written and {"SUPABASE_DB_URL", "PULUMI_STACK"} <= written


def test_an_alert_secret_cannot_replace_the_verify_url():
    """Red team: alertSecrets.PROD_VERIFY_DB_URL replaced the health job's read-only URL with a
    value of the stack's choosing (the dict of health secrets took the last one)."""
    verify = "postgresql://verifier:ro-pw@db/postgres"
    config = {**stack_config("prod"), "verifyDbUrl": verify}
    health = {r["inputs"]["secretName"]: r["inputs"]["value"]["value"] for r in _of_type(
        run_program("prod", config), "github:index/actionsEnvironmentSecret:ActionsEnvironmentSecret")
        if r["inputs"]["environment"] == "production-health"}
    assert health["PROD_VERIFY_DB_URL"] == verify and health["ONCALL_WEBHOOK_URL"] == HOOK_URL
    config["alertSecrets"] = {**config["alertSecrets"], "PROD_VERIFY_DB_URL": "postgresql://attacker@evil/db"}
    result = run_program("prod", config)
    assert "alertSecrets.PROD_VERIFY_DB_URL: PROD_VERIFY_DB_URL is the name of a secret the GitHub environments " \
           "already hold" in result["error"]
    assert "attacker@evil" not in result["error"]
    assert [r for r in result["registrations"] if r["type"] != "pulumi:pulumi:Stack"] == []


def test_an_optional_secret_set_as_plain_text_is_refused():
    """Pulumi.yaml cannot type optional secrets (the CLI rejects their default), so the
    program refuses one set without --secret, naming the key and the command."""
    config = {**stack_config("prod"), "githubToken": "ghp_plain_text_token"}
    result = run_program("prod", config, secret_keys=[k for k in SECRET_KEYS if k != "githubToken"])
    assert "supabase-platform:githubToken: set as plain text" in result["error"]
    assert "pulumi config set --secret githubToken" in result["error"]
    assert "ghp_plain_text_token" not in result["error"]
    assert [r for r in result["registrations"] if r["type"] != "pulumi:pulumi:Stack"] == []
