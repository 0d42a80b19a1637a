"""One cluster for the operations tests: pg_cron and pg_stat_statements preloaded, and the
ops schema installed in its `postgres` database (the one cron.database_name names, as on
Supabase) from the migration `supagate ops init` writes, which creates pg_cron there."""

from __future__ import annotations

import psycopg
import pytest


@pytest.fixture(scope="session")
def ops_cluster():
    from supagate.ops.alerts import ops_sql
    from supagate.postgres.embedded import EmbeddedPostgres

    with EmbeddedPostgres() as pg:
        with psycopg.connect(pg.url, autocommit=True) as conn:
            conn.execute(ops_sql())  # enables pg_cron itself: this is the cron database
        yield pg


@pytest.fixture
def ops_url(ops_cluster) -> str:
    return ops_cluster.url
