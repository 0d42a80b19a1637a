"""Which Postgres parameters restart the database is PostgreSQL's own answer: the
`postmaster` context in pg_settings of a real PostgreSQL 15."""

from supagate.postgres.connect import connect
from supagate.supabase_api.areas import POSTGRES_PARAMETERS, RESTART_PARAMETERS


def test_restart_parameters_are_the_postmaster_context_ones(db_url):
    with connect(db_url) as conn:
        contexts = dict(conn.execute("SELECT name, context FROM pg_settings WHERE name = ANY(%s)",
                                     (list(POSTGRES_PARAMETERS),)).fetchall())
    assert set(contexts) == set(POSTGRES_PARAMETERS)
    assert {name for name, context in contexts.items() if context == "postmaster"} == RESTART_PARAMETERS
