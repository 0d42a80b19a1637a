"""Pre-deploy checks on a real Postgres, and a fake Management API for backups: each
failure names its check, and the migrations provider stops before changing anything."""

from __future__ import annotations

import time

import psycopg
import pytest

from components.providers.migrations import MigrationsProvider
from supagate.offline.resource_types import migration_inputs
from supagate.migrations import runner
from supagate.postgres.connect import connect
from supagate.migrations.files import load_migrations
from supagate.delivery.preflight import Limits, pre_deploy_findings


def check(*args, **kwargs) -> list[str]:
    return [f"{f.rule}: {f.message}" for f in pre_deploy_findings(*args, **kwargs)]
from tests.conftest import write_migrations
from tests.supabase_api.test_faults import FakeApi

REF = "abcdefghijklmnopqrst"


def test_passes_on_a_quiet_database(db_url):
    assert check(db_url, Limits()) == []


def test_an_old_open_transaction_is_named_with_its_backend(db_url):
    holder = psycopg.connect(db_url, application_name="report-export")
    holder.execute("BEGIN; SELECT 1")
    time.sleep(2.2)
    try:
        failures = check(db_url, Limits(max_transaction_age_seconds=1))
    finally:
        holder.close()
    assert len(failures) == 1 and failures[0].startswith("transaction-age: backend")
    assert "(report-export)" in failures[0] and "pg_terminate_backend" in failures[0]


def test_too_many_connections(db_url):
    failures = check(db_url, Limits(max_connections_percent=0))
    assert len(failures) == 1 and failures[0].startswith("connections: ")


@pytest.fixture
def fake():
    server = FakeApi()
    yield server
    server.server.shutdown()


def _api(fake):
    return {"project_ref": REF, "api_url": fake.url, "allow_unlisted_api": True, "access_token": "sbp_preflight",
            "retry": {"attempts": 1, "timeout": 2.0, "total": 5.0}}


def test_backups_through_the_api(db_url, fake):
    path = f"/v1/projects/{REF}/database/backups"
    now = time.time()
    fake.on("GET", path, (200, {"region": "eu", "walg_enabled": True, "pitr_enabled": True, "backups": [],
                                "physical_backup_data": {"latest_physical_backup_date_unix": int(now - 600)}}))
    assert check(db_url, Limits(), _api(fake), now=now) == []
    fake.on("GET", path, (200, {"region": "eu", "walg_enabled": True, "pitr_enabled": False, "physical_backup_data": {},
                                "backups": [{"id": 1, "is_physical_backup": True, "status": "COMPLETED",
                                             "inserted_at": "2026-11-18T02:00:00Z"}]}))
    failures = check(db_url, Limits(max_backup_age_hours=24), _api(fake),
                     now=time.mktime(time.strptime("2026-11-20T02:00:00", "%Y-%m-%dT%H:%M:%S")) - time.timezone)
    assert len(failures) == 1 and failures[0].startswith("backup: the newest backup") and "48 h old" in failures[0]
    fake.on("GET", path, (200, {"region": "eu", "walg_enabled": True, "pitr_enabled": False, "backups": [],
                                "physical_backup_data": {}}))
    assert "no completed backup" in check(db_url, Limits(), _api(fake))[0]


def test_a_stack_that_counts_on_pitr_needs_it(db_url, fake):
    """backups.pitrEnabled was an inert key: now a prod deploy stops when the project has no PITR."""
    path = f"/v1/projects/{REF}/database/backups"
    now = time.time()
    fake.on("GET", path, (200, {"region": "eu", "walg_enabled": True, "pitr_enabled": False, "physical_backup_data": {},
                                "backups": [{"id": 1, "is_physical_backup": True, "status": "COMPLETED",
                                             "inserted_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now - 60))}]}))
    assert check(db_url, Limits(), _api(fake), now=now) == []  # a fresh daily backup is enough without the key
    (failure,) = check(db_url, Limits(require_pitr=True), _api(fake), now=now)
    assert "declares backups.pitrEnabled but project" in failure and "no point-in-time recovery" in failure


def test_migrations_provider_stops_before_applying_anything(db_url, tmp_path):
    src = write_migrations(tmp_path, {"20250101000000_a.sql": "create table preflight_a (id int);"})
    props = {"db_url": db_url, "migrations": migration_inputs(load_migrations(src)),
             "preflight": {"limits": {"max_connections_percent": 0}}}
    with pytest.raises(Exception) as raised:
        MigrationsProvider().create(props)
    assert "failed the pre-deploy checks; nothing was changed" in str(raised.value)
    assert "connections:" in str(raised.value)
    with connect(db_url) as conn:
        assert runner.read_history(conn) == {}
        assert conn.execute("SELECT to_regclass('preflight_a')").fetchone()[0] is None
