"""Bad input of every kind is refused with exit 2 and a message that names the file, key or
line and the fix; never a traceback, never a half-applied run."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from tests.cli.test_cli import supagate
from tests.conftest import APP, ROOT, write_migrations

GOOD = {"20250101000000_a.sql": "create table public.a (id int primary key);\n"}


@pytest.mark.parametrize("flags, expected", [
    (["--lock-wait", "nan"], "invalid lock_wait"),
    (["--lock-wait", "-5"], "invalid lock_wait"),
    (["--lock-timeout", "10x"], "invalid lock_timeout '10x'"),
    (["--statement-timeout", "-1"], "invalid statement_timeout '-1'"),
])
def test_bad_durations_exit_2(tmp_path, flags, expected):
    src = write_migrations(tmp_path / "m", GOOD)
    run = supagate("migrate", "--migrations", str(src), *flags, env={"SUPABASE_DB_URL": "postgresql://x@127.0.0.1:1/x"})
    assert run.returncode == 2 and expected in run.stderr and "Traceback" not in run.stderr


def _folder(tmp_path, make):
    src = write_migrations(tmp_path / "m", GOOD)
    make(src)
    return src


@pytest.mark.parametrize("make, expected", [
    (lambda d: (d / "20250102000000_b.sql").write_bytes(b"select 1;\nselect '\x00';\n"), "20250102000000_b.sql:2: a NUL byte"),
    (lambda d: os.symlink(d / "missing.sql", d / "20250102000000_b.sql"), "a link to a file that does not exist"),
    (lambda d: (d / "20250102000000_b.sql").mkdir(), "not a regular file"),
    (lambda d: (d / "20250102000000_b.sql").write_bytes(b"select '\xff';"), "not UTF-8"),
])
def test_bad_migration_folders_exit_2_before_anything_runs(tmp_path, db_url, make, expected):
    src = _folder(tmp_path, make)
    run = supagate("migrate", "--migrations", str(src), env={"SUPABASE_DB_URL": db_url})
    assert run.returncode == 2 and expected in run.stderr and "Traceback" not in run.stderr, run.stderr
    import psycopg

    with psycopg.connect(db_url) as conn:  # nothing was applied, not even the good file
        assert conn.execute("select to_regclass('public.a')").fetchone() == (None,)


def _stack_file(tmp_path, text: str | bytes):
    path = tmp_path / "Pulumi.prod.yaml"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return path


PROD = (APP / "Pulumi.prod.yaml").read_text()


@pytest.mark.parametrize("text, expected", [
    (PROD + "  supabase-platform:maxRows: 7\n", "is set twice"),
    (PROD + "  supabase-platfrom:region: eu-west-1\n", "did you mean supabase-platform:"),
    ("- just\n- a list\n", "expected a mapping with a `config:` mapping"),
    (PROD.encode() + b"  supabase-platform:region: \xff\n", "not UTF-8"),
])
@pytest.mark.parametrize("command", ["check", "plan"])
def test_bad_stack_files_exit_2(tmp_path, text, expected, command):
    path = _stack_file(tmp_path, text)
    args = ["check", "--no-shadow"] if command == "check" else ["plan"]
    run = supagate(*args, "--stack", "prod", "--stack-file", str(path))
    assert run.returncode == 2 and expected in run.stderr and "Traceback" not in run.stderr, run.stderr


@pytest.mark.parametrize("command", ["check", "plan"])
def test_a_function_override_without_a_folder_is_one_of_the_settings_errors(tmp_path, command):
    """Reported with every other bad key, in one error naming the stack file (it used to
    come alone, later, from the program, without the file's name)."""
    document = yaml.safe_load(PROD)
    document["config"]["supabase-platform:functions"]["no-such-function"] = {"verifyJwt": True}
    document["config"]["supabase-platform:maxRows"] = 0
    path = _stack_file(tmp_path, yaml.safe_dump(document))
    args = ["check", "--no-shadow"] if command == "check" else ["plan"]
    run = supagate(*args, "--stack", "prod", "--stack-file", str(path))
    assert run.returncode == 2 and "Traceback" not in run.stderr, run.stderr
    error = run.stderr[run.stderr.index(f"failed to load settings from {path}:"):]
    assert "supabase-platform:functions.no-such-function: the stack overrides a function that has no folder" in error
    assert "supabase-platform:maxRows:" in error


def test_overrides_of_functions_that_have_folders_load():
    """The safe twin: the example's override of webhook-terra (a folder) loads."""
    from supagate.config.loading import SettingsError, settings_from_stack_file

    functions = APP / "supabase" / "functions"
    settings = settings_from_stack_file("prod", APP / "Pulumi.prod.yaml", functions_dir=functions)
    assert settings.functions["webhook-terra"].signature_header == "terra-signature"
    with pytest.raises(SettingsError):  # and the same file with the folder gone does not
        settings_from_stack_file("prod", APP / "Pulumi.prod.yaml", functions_dir=functions / "_shared")


def test_a_huge_failing_statement_prints_a_bounded_excerpt(tmp_path, db_url):
    """A failing 8 MB single-line statement: the error shows a window around the position."""
    huge = "select " + ", ".join(["1"] * 2_000_000) + ", nosuchcolumn;\n"
    src = write_migrations(tmp_path / "m", {"20250101000000_huge.sql": huge})
    run = supagate("migrate", "--migrations", str(src), env={"SUPABASE_DB_URL": db_url})
    assert run.returncode == 1 and "nosuchcolumn" in run.stderr
    assert len(run.stderr) < 4000, f"{len(run.stderr)} characters of error output"


def test_reading_many_statements_stays_linear(tmp_path):
    """60,000 one-row INSERTs: counting newlines from the start of the file for each
    statement took about 40 s; one pass takes well under a second."""
    import time

    from supagate.migrations.files import load_migrations

    src = write_migrations(tmp_path / "m", {"20250101000000_rows.sql":
                                            "".join(f"insert into t values ({i});\n" for i in range(60_000))})
    started = time.monotonic()
    migration = load_migrations(src)[0]
    assert time.monotonic() - started < 8 and migration.statements[-1].line == 60_000


def test_plan_refuses_secret_names_without_values_as_the_real_load_does(tmp_path, pack_python):
    """A name in secretNames with no functionSecrets value fails `pulumi preview`; plan used
    to stand in for it and pass. It names the line to run; --assume-secrets plans anyway."""
    document = yaml.safe_load(PROD)
    document["config"]["supabase-platform:secretNames"].append("STRIPE_KEY")
    path = _stack_file(tmp_path, yaml.safe_dump(document))
    run = supagate("plan", "--stack", "prod", "--stack-file", str(path))
    assert run.returncode == 2 and "Traceback" not in run.stderr, run.stderr
    assert "pulumi config set --secret --path 'functionSecrets.STRIPE_KEY' VALUE --stack prod" in run.stderr
    assert "functionSecrets.TERRA_WEBHOOK_SECRET" not in run.stderr  # the fixture holds that one
    assumed = supagate("plan", "--stack", "prod", "--stack-file", str(path), "--assume-secrets", "--format", "json",
                       env={"SUPAGATE_PACK_VENV": str(Path(pack_python).parent.parent)})
    assert assumed.returncode in (0, 1), assumed.stderr
    assert "stand-ins for secrets the stack file does not hold: functionSecrets.STRIPE_KEY" in assumed.stderr
