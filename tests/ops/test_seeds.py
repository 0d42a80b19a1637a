"""Seeds below production, on every layer: the Seed resource runs a file once per content
(CLI-compatible bookkeeping, both ways with the real `supabase db push --include-seed`), a
database marked production refuses it whatever the stack says, DDL is refused with its
line, and the settings refuse seeds on a production tier or on another stack's prod project."""

from __future__ import annotations

import subprocess

import psycopg
import pytest

from components.providers.seed import DatabaseEnvironmentProvider, SeedProvider
from supagate.ops import seeds
from tests.provider_host import ProviderHost, without_provider

URN = "urn:pulumi:staging::supabase-platform::pulumi-python:dynamic/supabase:{}::operations-{}"


def _fresh(cluster, name: str) -> str:
    from supagate.ops.alerts import ops_sql

    url = cluster.create_database(name)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(ops_sql())
        conn.execute("create table public.demo (id int primary key, v text)")
    return url


def _files(sql: str) -> list[dict]:
    seed = seeds.SeedFile("supabase/seed.sql", sql)
    return [{"path": seed.path, "sql": seed.sql, "hash": seed.hash}]


def test_a_seed_runs_once_per_content_and_records_it_as_the_cli_does(cluster):
    url = _fresh(cluster, "seed_once")
    with ProviderHost(SeedProvider(), URN.format("Seed", "seed")) as host:
        host.configure()
        props = {"db_url": url, "name": "seed", "tier": "staging",
                 "files": _files("insert into public.demo values (1, 'a');")}
        id_, outs = host.create(props)
        assert outs["ran"] == ["supabase/seed.sql"]
        assert host.diff(id_, without_provider(outs), props).changes == 1  # same content: nothing to run
        changed = {**props, "files": _files("insert into public.demo values (2, 'b');")}
        assert host.diff(id_, without_provider(outs), changed).changes == 2
        outs = host.update(id_, without_provider(outs), changed)
        assert outs["ran"] == ["supabase/seed.sql"]
    with psycopg.connect(url) as conn:
        assert conn.execute("select id from public.demo order by id").fetchall() == [(1,), (2,)]
        (path, digest), = conn.execute("select path, hash from supabase_migrations.seed_files").fetchall()
    assert path == "supabase/seed.sql" and digest == _files("insert into public.demo values (2, 'b');")[0]["hash"]


def test_a_database_marked_production_refuses_a_staging_stacks_seed(cluster):
    """A staging stack whose dbUrl points at prod by mistake: the database says no."""
    url = _fresh(cluster, "seed_marked_prod")
    with ProviderHost(DatabaseEnvironmentProvider(), URN.format("DatabaseEnvironment", "environment")) as env_host:
        env_host.configure()
        env_host.create({"db_url": url, "name": "environment", "tier": "production", "project_ref": "p" * 20})
    with ProviderHost(SeedProvider(), URN.format("Seed", "seed")) as host:
        host.configure()
        with pytest.raises(Exception, match="production database: seed data never runs here"):
            host.create({"db_url": url, "name": "seed", "tier": "staging",
                         "files": _files("insert into public.demo values (1, 'a');")})
        inputs, failures = host.check({}, {"db_url": url, "name": "seed", "tier": "production", "files": []})
        assert failures and "seed data never runs on a production tier" in failures[0][1]
    with psycopg.connect(url, autocommit=True) as conn:
        assert conn.execute("select count(*) from public.demo").fetchone() == (0,)
        with pytest.raises(psycopg.errors.RaiseException, match="marked production; the mark never changes"):
            conn.execute("update ops.environment set tier = 'staging'")


def test_ddl_in_a_seed_is_refused_with_its_line(tmp_path):
    (tmp_path / "supabase").mkdir()
    (tmp_path / "supabase" / "seed.sql").write_text("insert into public.demo values (1, 'a');\n\n"
                                                    "drop table public.demo;\n")
    with pytest.raises(seeds.SeedError) as failure:
        seeds.load(tmp_path, ())
    assert "supabase/seed.sql:3: DROP is not data" in str(failure.value)


def test_the_cli_and_the_resource_agree_both_ways(cluster, supabase_cli, tmp_path):
    project = tmp_path / "app"
    (project / "supabase" / "migrations").mkdir(parents=True)
    (project / "supabase" / "migrations" / "20250101000000_demo.sql").write_text(
        "create table public.demo (id int primary key, v text);\n")
    (project / "supabase" / "config.toml").write_text('project_id = "seeds"\n[db.seed]\nenabled = true\n'
                                                      'sql_paths = ["./seed.sql"]\n')
    (project / "supabase" / "seed.sql").write_text("insert into public.demo values (1, 'from the cli');\n")
    for first in ("cli", "resource"):
        url = cluster.create_database(f"seed_interop_{first}")
        with psycopg.connect(url, autocommit=True) as conn:
            from supagate.ops.alerts import ops_sql

            conn.execute(ops_sql())

        def cli():
            done = subprocess.run([supabase_cli, "db", "push", "--include-seed", "--db-url", url, "--yes"], cwd=project,
                                  capture_output=True, text=True, timeout=180)
            assert done.returncode == 0, done.stderr[-1500:]

        def resource():
            with psycopg.connect(url, autocommit=True) as conn:
                if conn.execute("select to_regclass('public.demo')").fetchone()[0] is None:
                    conn.execute("create table public.demo (id int primary key, v text)")
            return seeds.apply(url, seeds.load(project, ()))

        if first == "cli":
            cli()
            assert resource() == []  # the CLI's row has our hash: nothing runs twice
        else:
            assert resource() == ["supabase/seed.sql"]
            subprocess.run([supabase_cli, "migration", "repair", "20250101000000", "--status", "applied", "--db-url",
                            url, "--yes"], cwd=project, capture_output=True, text=True, timeout=180)
            cli()  # the CLI sees our row and does not seed again (a second insert would fail on the key)
        with psycopg.connect(url) as conn:
            assert conn.execute("select count(*) from public.demo").fetchone() == (1,)


def test_seeds_are_refused_on_production_and_on_a_prod_project(tmp_path, monkeypatch):
    from components.operations import seed_inputs
    from supagate.config.loading import SettingsError, load_settings

    with pytest.raises(SettingsError, match="seed.enabled on a production tier"):
        load_settings("prod", {"tier": "production", "projectRef": "p" * 20, "noStagingReason": "solo",
                               "seed": {"enabled": True}}, "Pulumi.prod.yaml")
    (tmp_path / "Pulumi.prod.yaml").write_text("config:\n  supabase-platform:tier: production\n"
                                               f"  supabase-platform:projectRef: {'p' * 20}\n")
    monkeypatch.chdir(tmp_path)
    mistaken = load_settings("staging", {"tier": "staging", "projectRef": "p" * 20, "seed": {"enabled": True}},
                             "Pulumi.staging.yaml")
    with pytest.raises(SettingsError, match="which Pulumi.prod.yaml deploys as production"):
        seed_inputs(mistaken)
