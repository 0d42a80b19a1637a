"""Seeds never reach production, by any path: `supagate test` (a database given by URL, or
one whose own migrations mark it production), `supagate local`, the Seed resource; each
next to its safe twin on a database that is not production. A seed cannot get around the
guard from inside: it runs in one transaction that asks first and last, on a session of
its own, and may neither commit, SET, change its role nor mark the database."""

from __future__ import annotations

import json

import psycopg
import pytest

from supagate.ops import seeds
from supagate.ops.alerts import ops_sql
from tests.cli.test_cli import supagate
from tests.conftest import write_migrations

PGTAP = ("begin;\ncreate extension if not exists pgtap with schema extensions;\nselect plan(1);\n"
         "select is((select count(*) from public.notes)::int, 2, 'the seed loaded');\n"
         "select * from finish();\nrollback;\n")


def _app(root, mark: str | None = None, with_ops: bool = True):
    """An app with a seed and a pgTAP test; `mark`: a migration of its own that writes the
    database's tier (as the stack's DatabaseEnvironment resource does)."""
    migrations = {"20250101000000_notes.sql": "create table public.notes (id bigint primary key, body text);\n"
                                              "alter table public.notes enable row level security;\n"}
    if with_ops:
        migrations["20250101000100_supagate_ops.sql"] = ops_sql()
    if mark:
        migrations["20250101000200_mark.sql"] = (f"insert into ops.environment (tier, project_ref) "
                                                 f"values ('{mark}', 'refrefrefrefrefrefre');\n")
    write_migrations(root / "supabase" / "migrations", migrations)
    (root / "supabase" / "seed.sql").write_text("insert into public.notes (id, body) values (1, 'a'), (2, 'b');\n")
    write_migrations(root / "supabase" / "tests", {"notes.test.sql": PGTAP})
    return root


def _marked(cluster, name: str, tier: str | None) -> str:
    url = cluster.create_database(name)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(ops_sql())
        if tier:
            conn.execute("insert into ops.environment (tier, project_ref) values (%s, 'prodprodprodprodprod')", (tier,))
    return url


def _state(url: str):
    """(notes rows, recorded seed files, applied migrations) of a database."""
    with psycopg.connect(url, autocommit=True) as conn:
        def count(table):
            if conn.execute("select to_regclass(%s)", (table,)).fetchone()[0] is None:
                return None
            return conn.execute(f"select count(*) from {table}").fetchone()[0]

        return count("public.notes"), count("supabase_migrations.seed_files"), \
            count("supabase_migrations.schema_migrations")


# ---------------------------------------------------------------- supagate test, a database by URL

def test_supagate_test_refuses_a_database_marked_production_before_touching_it(cluster, tmp_path):
    url = _marked(cluster, "seedpath_test_prod", "production")
    done = supagate("test", "--project", str(_app(tmp_path / "app", with_ops=False)), "--db-url", url)
    assert done.returncode == 1, done.stderr
    assert "refused to test on this database" in done.stderr and "seed data never runs here" in done.stderr
    assert _state(url) == (None, None, None)  # no migration, no seed, no bookkeeping
    # The same through SUPABASE_DB_URL, as a shell that exported prod's URL would run it.
    done = supagate("test", "--project", str(tmp_path / "app"), env={"SUPABASE_DB_URL": url})
    assert done.returncode == 1 and _state(url) == (None, None, None)


def test_supagate_test_seeds_a_database_marked_staging(cluster, tmp_path):
    url = _marked(cluster, "seedpath_test_staging", "staging")  # the ops schema deployed, as on staging
    done = supagate("test", "--project", str(_app(tmp_path / "app", with_ops=False)), "--db-url", url,
                    "--format", "json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["seeded"] == ["supabase/seed.sql"]
    assert _state(url)[:2] == (2, 1)


def test_supagate_test_refuses_to_seed_a_database_that_cannot_say(db_url, tmp_path):
    """No ops schema, and not a database supagate started: it cannot say it is not production."""
    done = supagate("test", "--project", str(_app(tmp_path / "app", with_ops=False)), "--db-url", db_url)
    assert done.returncode == 1
    assert "refused to seed supabase/seed.sql: the database cannot say whether it is production" in done.stderr
    assert _state(db_url)[0] == 0


# ---------------------------------------------------------------- the guard inside the seed's transaction

def test_supagate_test_and_local_refuse_a_database_its_own_migrations_mark_production(cluster, tmp_path):
    """Not marked when the run starts: the guard in the seed's own transaction refuses it."""
    url = cluster.create_database("seedpath_migrated_prod")
    app = _app(tmp_path / "app", mark="production")
    done = supagate("test", "--project", str(app), "--db-url", url)
    assert done.returncode == 1
    assert "refused to seed supabase/seed.sql: this database is project refrefrefrefrefrefre's production" \
        in done.stderr
    assert _state(url)[:2] == (0, None)  # the bookkeeping table is made inside the refused transaction
    local = supagate("local", "--project", str(app), "--format", "json")
    assert local.returncode == 1 and "refused to seed supabase/seed.sql" in local.stderr and local.stdout == ""


def test_supagate_local_seeds_an_app_that_marks_itself_staging_or_not_at_all(tmp_path):
    for name, mark, with_ops in (("staging", "staging", True), ("plain", None, False)):
        done = supagate("local", "--project", str(_app(tmp_path / name, mark=mark, with_ops=with_ops)),
                        "--format", "json")
        assert done.returncode == 0, done.stderr
        report = json.loads(done.stdout)
        assert report["seeded"] == ["supabase/seed.sql"] and report["passed"], name


# ---------------------------------------------------------------- a seed that works against the guard

def _seed(cluster, name: str, *files: str) -> tuple[str, list[seeds.SeedFile]]:
    url = _marked(cluster, name, "staging")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("create table public.notes (id bigint primary key, body text)")
    return url, [seeds.SeedFile(f"supabase/seeds/{i}.sql", sql) for i, sql in enumerate(files)]


def test_a_seed_that_marks_the_database_production_is_undone(cluster):
    url, files = _seed(cluster, "seedpath_marks", "insert into public.notes values (1, 'a');\n"
                                                  "update ops.environment set tier = 'production';\n")
    with pytest.raises(seeds.SeedRefused, match="seed data never runs here"):
        seeds.apply(url, files)
    with psycopg.connect(url) as conn:
        assert conn.execute("select tier from ops.environment").fetchone() == ("staging",)
    assert _state(url)[:2] == (0, None)


def test_a_seed_that_changes_its_role_is_refused_and_nothing_kept(cluster):
    url, files = _seed(cluster, "seedpath_role", "insert into public.notes values (1, 'a');\n"
                                                 "select set_config('role', 'anon', false);\n")
    with pytest.raises(seeds.SeedRefused, match="changed the transaction or the role"):
        seeds.apply(url, files)
    assert _state(url)[:2] == (0, None)


def test_a_setting_one_seed_makes_never_reaches_the_next(cluster):
    """With standard_conforming_strings off, the second file's string ends early and a DROP the
    DML check never saw would run; each file gets a session of its own, lexed as checked."""
    url, files = _seed(cluster, "seedpath_lexing", "select set_config('standard_conforming_strings', 'off', false);\n",
                       "select 'x\\''; drop table public.notes; --';\ninsert into public.notes values (1, 'a');\n")
    assert seeds.apply(url, files) == ["supabase/seeds/0.sql", "supabase/seeds/1.sql"]
    assert _state(url)[:2] == (1, 2)  # the table is still there, with the row


@pytest.mark.parametrize("statement, shown", [("commit;", "BEGIN/COMMIT/ROLLBACK/SAVEPOINT"),
                                              ("rollback;", "BEGIN/COMMIT/ROLLBACK/SAVEPOINT"),
                                              ("set session_replication_role = replica;", "SET/RESET"),
                                              ("reset role;", "SET/RESET"),
                                              ("\\connect postgres", "does not parse")])
def test_a_seed_cannot_end_its_transaction_or_change_the_session(tmp_path, statement, shown):
    (tmp_path / "supabase").mkdir()
    (tmp_path / "supabase" / "seed.sql").write_text(f"insert into public.notes values (1, 'a');\n{statement}\n")
    with pytest.raises(seeds.SeedError) as refused:
        seeds.load(tmp_path, ())
    assert f"supabase/seed.sql:2: {shown}" in str(refused.value)
