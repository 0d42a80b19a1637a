"""`supagate check` as CI runs it: the example app passes prod with the real Supabase
advisors; unsafe SQL exits 1 naming the rule; bad input exits 2; stacks differ."""

from __future__ import annotations

import json

from tests.cli.test_cli import supagate
from tests.conftest import APP, write_migrations

LEAKY = {
    "20250101000000_notes.sql":
        "create table public.notes (id bigint primary key, user_id uuid references auth.users, body text);\n",
}
FINDING_KEYS = {"rule", "enforcement", "object", "file", "line", "message", "fix"}


def test_example_app_passes_prod_with_advisors_and_probes():
    run = supagate("check", "--stack", "prod", "--format", "json")
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout)
    assert report["blocked"] is False
    assert not [f for f in report["findings"] if f["enforcement"] == "mandatory"]
    assert all(FINDING_KEYS <= set(f) for f in report["findings"])
    # The real `supabase db advisors` ran against the shadow database and was mapped.
    assert any(f["rule"].startswith("advisor/") for f in report["findings"]), report
    assert "10 migrations applied, 7 tables probed" in run.stderr
    allowed = [f for f in report["findings"] if f.get("allowed")]
    assert sorted((f["rule"], f["object"]) for f in allowed if f["rule"] != "rls-no-policy") == [
        ("destructive-unapproved", "ops.read_as_alert_reader"),  # the alert-rule reader owns it, on purpose
        ("destructive-unapproved", "ops.run_job")]  # and the job runner ops.run_job
    assert len([f for f in allowed if f["rule"] == "rls-no-policy"]) == 5


def test_unsafe_migration_exits_1_with_rule_and_fix_grouped_by_file(tmp_path):
    src = write_migrations(tmp_path / "m", LEAKY)
    run = supagate("check", "--migrations", str(src), "--no-advisors")
    assert run.returncode == 1
    # The report is on stdout (`supagate check | less`, `> report.txt`); progress on stderr.
    assert "20250101000000_notes.sql" in run.stdout
    assert "MANDATORY rls-missing: public.notes line 1" in run.stdout
    assert "fix: Add ALTER TABLE public.notes ENABLE ROW LEVEL SECURITY" in run.stdout
    assert run.stdout.rstrip().splitlines()[-1].startswith("BLOCKED: ")
    assert "Static analysis:" in run.stderr and "Static analysis:" not in run.stdout
    quiet = supagate("--quiet", "check", "--migrations", str(src), "--no-advisors")
    assert quiet.returncode == 1 and quiet.stderr == "" and "BLOCKED: " in quiet.stdout


def test_staging_reports_the_same_finding_as_advisory(tmp_path):
    src = write_migrations(tmp_path / "m", LEAKY)
    prod = json.loads(supagate("check", "--migrations", str(src), "--no-shadow", "--format", "json").stdout)
    run = supagate("check", "--stack", "staging", "--migrations", str(src), "--no-shadow", "--format", "json")
    assert run.returncode == 0, run.stderr
    staging = json.loads(run.stdout)
    assert {(f["rule"], f["enforcement"]) for f in prod["findings"]} == {("rls-missing", "mandatory")}
    assert {(f["rule"], f["enforcement"]) for f in staging["findings"]} == {("rls-missing", "advisory")}
    assert staging["blocked"] is False and prod["blocked"] is True


def test_allow_without_reason_and_bad_paths_exit_2(tmp_path):
    src = write_migrations(tmp_path / "m", {"20250101000000_a.sql": "-- gate:allow rls-missing\nselect 1;\n"})
    run = supagate("check", "--migrations", str(src), "--no-shadow")
    assert run.returncode == 2
    assert "20250101000000_a.sql:1: `gate:allow rls-missing` has no reason" in run.stderr
    unknown = write_migrations(tmp_path / "u", {"20250101000000_a.sql": "-- gate:allow rls-mising typo\n"})
    run = supagate("check", "--migrations", str(unknown), "--no-shadow")
    assert run.returncode == 2 and "names no gate rule" in run.stderr
    assert supagate("check", "--migrations", str(tmp_path / "nope")).returncode == 2
    assert supagate("check", "--stack-file", str(tmp_path / "Pulumi.x.yaml")).returncode == 2
    assert supagate("check", "--format", "xml").returncode == 2


def test_shadow_db_url_must_be_empty(db_url, tmp_path):
    src = write_migrations(tmp_path / "m", {"20250101000000_ok.sql": "select 1;\n"})
    first = supagate("check", "--migrations", str(src), "--db-url", db_url, "--no-advisors")
    assert first.returncode == 0, first.stderr
    again = supagate("check", "--migrations", str(src), "--db-url", db_url, "--no-advisors")
    assert again.returncode == 1 and "already has migrations applied" in again.stderr


def test_target_history_finds_edited_migration(db_url, tmp_path):
    src = write_migrations(tmp_path / "m", {"20250101000000_ok.sql": "select 1;\n"})
    assert supagate("migrate", "--db-url", db_url, "--migrations", str(src)).returncode == 0
    (src / "20250101000000_ok.sql").write_text("select 2;\n")
    run = supagate("check", "--migrations", str(src), "--no-shadow", "--format", "json",
                   env={"SUPAGATE_TARGET_DB_URL": db_url})
    assert run.returncode == 1
    assert [f["rule"] for f in json.loads(run.stdout)["findings"]] == ["migration-edited"]


def test_shadow_password_never_reaches_a_command_line_or_the_output(tmp_path, db_url):
    from supagate.gates.shadow.advisors import run_advisors

    password = "sh4dow-pw-never-printed"
    url = db_url.replace("postgres@", f"postgres:{password}@")
    recorder = tmp_path / "fake-supabase"
    recorder.write_text("#!/bin/sh\nprintf '%s\\n' \"$@\" > \"$0.argv\"\nprintf '%s' \"$PGPASSWORD\" > \"$0.pw\"\n"
                        "echo '{\"results\": []}'\n")
    recorder.chmod(0o755)
    assert run_advisors(str(recorder), url) == []
    argv = (tmp_path / "fake-supabase.argv").read_text()
    assert password not in argv and "--remote=postgresql://postgres@" in argv
    assert (tmp_path / "fake-supabase.pw").read_text() == password
    # A failure names the problem, never the password.
    src = write_migrations(tmp_path / "m", {"20250101000000_ok.sql": "select 1;\n"})
    dead = f"postgresql://postgres:{password}@127.0.0.1:1/postgres"
    run = supagate("check", "--migrations", str(src), env={"SUPAGATE_SHADOW_DB_URL": dead})
    assert run.returncode == 1 and "failed to connect" in run.stderr
    assert password not in run.stderr + run.stdout


def test_a_stack_name_without_a_stack_file_exits_2_on_every_command(tmp_path):
    """A typo must never turn the gates off (`prdo` used to pass as a lenient stack)."""
    src = write_migrations(tmp_path / "m", LEAKY)
    for args in (["check", "--migrations", str(src), "--no-shadow"], ["plan"], ["verify", "--no-health"],
                 ["migrate", "--migrations", str(src)]):
        run = supagate(*args, "--stack", "prdo", env={"SUPABASE_DB_URL": "postgresql://x@127.0.0.1:1/x"})
        assert run.returncode == 2, (args, run.stderr)
        assert "Pulumi.prdo.yaml: no such stack file" in run.stderr and "Known stacks: prod, staging" in run.stderr


def test_a_stack_named_production_with_tier_production_is_as_strict_as_prod(tmp_path):
    import yaml

    document = yaml.safe_load((APP / "Pulumi.prod.yaml").read_text())
    path = tmp_path / "Pulumi.production.yaml"
    path.write_text(yaml.safe_dump(document))
    src = write_migrations(tmp_path / "m", LEAKY)
    run = supagate("check", "--stack", "production", "--stack-file", str(path), "--migrations", str(src),
                   "--no-shadow", "--format", "json")
    assert run.returncode == 1
    assert {(f["rule"], f["enforcement"]) for f in json.loads(run.stdout)["findings"]} == {("rls-missing", "mandatory")}
