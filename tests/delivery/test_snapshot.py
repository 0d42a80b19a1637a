"""The pre-migration snapshot (scripts/snapshot, run by the Database component on prod):
made with the pg_dump of the server's major version and encrypted with age (real keys,
real encryption) before it touches the disk; what deploy-prod uploads (its artifact's
globs, read from the generated workflow) is never a dump pg_restore can read; the
encrypted dump restores into a fresh database with every table's rows."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import psycopg
import pytest
import yaml

from supagate.migrations import runner
from supagate.migrations.files import load_migrations
from supagate.postgres.connect import libpq_env
from tests.conftest import ROOT
from tests.delivery.test_workflows import FILES

PG_RESTORE = "/usr/lib/postgresql/15/bin/pg_restore"


@pytest.fixture(scope="module")
def source(cluster, tmp_path_factory) -> str:
    """A database with 25 users and 40 readings."""
    url = cluster.create_database("snapshot_source")
    migrations = tmp_path_factory.mktemp("migrations")
    (migrations / "20250101000000_readings.sql").write_text(
        "create table public.readings (id bigint primary key generated always as identity,\n"
        "  user_id uuid references auth.users, value numeric not null);\n"
        "alter table public.readings enable row level security;\n"
        "insert into public.readings (value) select g from generate_series(1, 40) g;\n")
    runner.migrate(url, load_migrations(migrations), progress=lambda _: None)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("insert into auth.users (id, email, aud, role) select gen_random_uuid(), "
                     "'u' || g || '@example.com', 'authenticated', 'authenticated' from generate_series(1, 25) g")
    return url


def keypair(directory: Path) -> tuple[Path, str]:
    """A real age identity file and its public key, as `age-keygen` makes them."""
    identity = directory / "key.txt"
    subprocess.run(["age-keygen", "-o", str(identity)], check=True, capture_output=True, timeout=30)
    public = subprocess.run(["age-keygen", "-y", str(identity)], check=True, capture_output=True, text=True)
    return identity, public.stdout.strip()


def snapshot(url: str, backups: Path, recipients: str) -> subprocess.CompletedProcess:
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("PG")}, **libpq_env(url),
           "SNAPSHOT_FILE": str(backups / "pre-migration-abc.dump"), "SNAPSHOT_RECIPIENTS": recipients}
    return subprocess.run([str(ROOT / "scripts" / "snapshot")], env=env, capture_output=True, text=True, timeout=120)


def uploaded(backups: Path) -> list[Path]:
    """The files deploy-prod's artifact step takes, by its own globs."""
    step = next(s for s in yaml.safe_load(FILES["deploy-prod.yml"])["jobs"]["deploy"]["steps"]
                if s.get("uses", "").startswith("actions/upload-artifact@"))
    globs = [line.strip() for line in step["with"]["path"].splitlines() if line.strip()]
    matched = {p for g in globs for p in backups.parent.glob(g.rstrip("/"))}
    return sorted({f for p in matched for f in ([p] if p.is_file() else p.rglob("*")) if f.is_file()})


def readable_by_pg_restore(path: Path) -> bool:
    return subprocess.run([PG_RESTORE, "--list", str(path)], capture_output=True, timeout=60).returncode == 0


def test_an_encrypted_snapshot_restores_with_the_same_row_counts(cluster, source, tmp_path):
    identity, public = keypair(tmp_path)
    backups = tmp_path / "backups"
    done = snapshot(source, backups, public)
    assert done.returncode == 0, done.stderr
    assert "PostgreSQL 15" in done.stderr and "encrypted to 1 key(s)" in done.stderr
    assert sorted(p.name for p in backups.iterdir()) == ["pre-migration-abc.dump.age", "pre-migration-abc.rows.json"]
    encrypted = backups / "pre-migration-abc.dump.age"
    assert encrypted.read_bytes().startswith(b"age-encryption.org/v1") and b"PGDMP" not in encrypted.read_bytes()
    assert not readable_by_pg_restore(encrypted)
    assert uploaded(backups) == sorted(backups.iterdir())
    counts = json.loads((backups / "pre-migration-abc.rows.json").read_text())
    assert counts["auth.users"] == 25 and counts["public.readings"] == 40

    with psycopg.connect(cluster.url, autocommit=True) as conn:  # an empty database, as a restore would use
        conn.execute("create database snapshot_target")
    target = cluster.url_for("snapshot_target")
    # The restore the README documents, with the identity kept off the runner.
    restore = subprocess.run(["bash", "-o", "pipefail", "-c", 'age --decrypt --identity "$1" "$2" | '
                              f'{PG_RESTORE} --no-owner --dbname "$3"', "restore", str(identity), str(encrypted),
                              target], capture_output=True, text=True, timeout=120)
    assert restore.returncode == 0, restore.stderr
    with psycopg.connect(target) as conn:
        for table, rows in counts.items():
            schema, name = table.split(".")
            assert conn.execute(f'select count(*) from "{schema}"."{name}"').fetchone()[0] == rows, table


def test_another_key_cannot_decrypt_the_snapshot(source, tmp_path):
    ours, theirs = tmp_path / "ours", tmp_path / "theirs"
    ours.mkdir()
    theirs.mkdir()
    _, public = keypair(ours)
    stranger, _ = keypair(theirs)
    backups = tmp_path / "backups"
    assert snapshot(source, backups, public).returncode == 0
    attempt = subprocess.run(["age", "--decrypt", "--identity", str(stranger),
                              str(backups / "pre-migration-abc.dump.age")], capture_output=True, timeout=60)
    assert attempt.returncode != 0 and attempt.stdout == b""


def test_without_a_recipient_no_dump_is_kept_only_the_row_counts(source, tmp_path):
    """The old deploy uploaded a plain pg_dump of prod; with no key configured there is none."""
    backups = tmp_path / "backups"
    done = snapshot(source, backups, "")
    assert done.returncode == 0, done.stderr
    assert "no dump is kept" in done.stderr
    assert [p.name for p in backups.iterdir()] == ["pre-migration-abc.rows.json"]
    assert json.loads((backups / "pre-migration-abc.rows.json").read_text())["public.readings"] == 40


def test_the_artifact_never_takes_a_plain_dump(source, tmp_path):
    """A plain dump left in backups/ (what the old snapshot wrote) is readable by pg_restore,
    and the artifact's globs leave it out."""
    backups = tmp_path / "backups"
    backups.mkdir()
    plain = backups / "pre-migration-abc.dump"
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("PG")}, **libpq_env(source)}
    subprocess.run(["/usr/lib/postgresql/15/bin/pg_dump", "--format=custom", "--file", str(plain)], env=env,
                   check=True, timeout=120)
    assert readable_by_pg_restore(plain)
    assert plain not in uploaded(backups)


def test_a_secret_key_given_as_recipient_is_refused_without_echoing_it(source, tmp_path):
    identity, _ = keypair(tmp_path)
    secret = next(line for line in identity.read_text().splitlines() if line.startswith("AGE-SECRET-KEY-"))
    backups = tmp_path / "backups"
    done = snapshot(source, backups, secret)
    assert done.returncode == 1 and "not an age public key" in done.stderr
    assert secret not in done.stderr + done.stdout
    assert not backups.exists() or not any(backups.iterdir())


# ---------------------------------------------------------------- who the snapshot is encrypted to

ATTACKER = "age1s5h6awsscxtaqc870u2wtsx9d36nfv6dgmulx2wkyx6njvdmxegs9n4e7x"


def test_a_pull_request_cannot_name_the_snapshots_recipients(tmp_path):
    """Red team: `backups.snapshotRecipients: [<attacker's key>]` in Pulumi.prod.yaml passed
    `supagate plan`, and deploy-prod uploaded prod's dump encrypted to that key. The key is
    refused now, by plan (exit 2) and the program alike, naming the key and the fix."""
    from tests.cli.test_cli import supagate
    from tests.conftest import APP

    document = yaml.safe_load((APP / "Pulumi.prod.yaml").read_text())
    document["config"]["supabase-platform:backups"]["snapshotRecipients"] = [ATTACKER]
    stack = tmp_path / "Pulumi.prod.yaml"
    stack.write_text(yaml.safe_dump(document))
    refused = supagate("plan", "--stack", "prod", "--stack-file", str(stack), "--policy-pack-config",
                       "policies/config/prod-pull-request.json", "--assume-secrets", cwd=ROOT)
    assert refused.returncode == 2
    assert "supabase-platform:backups.snapshotRecipients: the snapshot's age recipients are not read" in refused.stderr
    assert "gh secret set SNAPSHOT_RECIPIENTS --env production" in refused.stderr
    assert ATTACKER not in refused.stderr + refused.stdout


def test_the_deploy_takes_the_recipients_from_the_production_environment_only():
    """The one place the recipients come from: production's secret, set by an admin (no stack
    writes it: tests/offline/test_program_mocks.py), passed to the `pulumi up` step whose
    snapshot Command inherits it. The audit refuses any other source
    (tests/delivery/test_workflow_audit_bypasses.py)."""
    from supagate.config.loading import settings_from_stack_file
    from tests.conftest import APP

    assert settings_from_stack_file("prod", APP / "Pulumi.prod.yaml").backups.snapshot_recipients == ()
    deploy = yaml.safe_load(FILES["deploy-prod.yml"])["jobs"]["deploy"]
    assert deploy["environment"] == "production"
    sources = [(step["name"], value) for step in deploy["steps"] for key, value in (step.get("env") or {}).items()
               if key == "SNAPSHOT_RECIPIENTS"]
    assert sources == [("pulumi up prod with the policy pack", "${{ secrets.SNAPSHOT_RECIPIENTS }}")]
    assert "SNAPSHOT_RECIPIENTS" not in str(deploy.get("env"))
