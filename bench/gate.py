"""Benchmark: `supagate check` (static analysis + squawk + shadow database + isolation
probes + Supabase's advisors) next to the peers it wraps, run alone on the same input in
the same run:
  - `supabase db advisors` (pinned 3.1.0) on a database already migrated (lints only),
  - `squawk` (pinned squawk-cli) over the same files.
Inputs: the example app (supabase/migrations); a generated project of 500 tables in
2,000 migrations; a generated project shaped like a real 1,262-migration Supabase app
(tables with RLS, definer functions and grants, triggers, pg_net webhooks, storage
buckets and policies, views, enums, backfills, policy rewrites, realtime, cron).
Each check is timed as a user runs it (a whole process), median of --repeat runs with the
spread, after one warm-up run that builds the machine's cluster template if needed.
Targets: the example app <= 15 s; the 500-table project <= 6 s; the app-shaped project
<= 10 s; static analysis >= 2,000 statements per second.

    uv run python bench/gate.py [--repeat 5] [--only example,500,app]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from stats import Samples, fresh_bytecode, target, timed  # noqa: E402

from supagate.gates.catalog.replay import analyse  # noqa: E402
from supagate.gates.squawk import squawk_path  # noqa: E402
from supagate.migrations import runner  # noqa: E402
from supagate.migrations.files import load_migrations  # noqa: E402
from supagate.postgres.embedded import EmbeddedPostgres  # noqa: E402
from supagate.tools import node_tool  # noqa: E402


def generate_tables(directory: Path, tables: int) -> Path:
    """Four migrations per table: create with RLS and owner policies; add a column; an
    index built concurrently in its own file; a view."""
    migrations = directory / "supabase" / "migrations"
    migrations.mkdir(parents=True)
    version = 20240101000000
    for i in range(tables):
        files = {
            f"t{i}_create": f"""create table public.t{i} (
  id bigint generated always as identity primary key,
  user_id uuid not null references auth.users (id) on delete cascade,
  value numeric not null default 0,
  created_at timestamptz not null default now()
);
alter table public.t{i} enable row level security;
create policy "own rows t{i}" on public.t{i} for select to authenticated using ((select auth.uid()) = user_id);
create policy "own inserts t{i}" on public.t{i} for insert to authenticated with check ((select auth.uid()) = user_id);
""",
            f"t{i}_note": f"alter table public.t{i} add column note text not null default '';\n",
            f"t{i}_index": f"create index concurrently t{i}_user_idx on public.t{i} (user_id, created_at desc);\n",
            f"t{i}_view": f"create view public.t{i}_recent with (security_invoker = true) as\n"
                          f"  select id, user_id, value from public.t{i} where created_at > now() - interval '7 days';\n",
        }
        for name, sql in files.items():
            (migrations / f"{version}_{name}.sql").write_text(sql)
            version += 1
    return migrations


APP_PRELUDE = """create extension if not exists pg_net;
create extension if not exists pg_cron;
create schema if not exists private;
grant usage on schema private to authenticated;
create or replace function public.set_updated_at() returns trigger language plpgsql set search_path = ''
as $$ begin new.updated_at := now(); return new; end $$;
"""


def _app_table(n: int) -> str:
    t = f"public.t{n}"
    return f"""create table {t} (
  id uuid primary key default gen_random_uuid(),
  user_id uuid not null default auth.uid() references auth.users (id) on delete cascade,
  title text not null default '',
  status text not null default 'draft',
  data jsonb not null default '{{}}'::jsonb,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);
alter table {t} enable row level security;
create policy "t{n} owner reads" on {t} for select to authenticated using ((select auth.uid()) = user_id);
create policy "t{n} owner writes" on {t} for insert to authenticated with check ((select auth.uid()) = user_id);
create policy "t{n} owner updates" on {t} for update to authenticated
  using ((select auth.uid()) = user_id) with check ((select auth.uid()) = user_id);
create index t{n}_user_idx on {t} (user_id);
"""


def _app_change(kind: str, n: int, t: str, once: set) -> str:
    """One later migration of kind `kind` on table `t` (a name like t12)."""
    q = f"public.{t}"
    if kind == "column":
        return f"alter table {q} add column c{n} text;\nalter table {q} add column c{n}_at timestamptz;\n"
    if kind == "check":
        return (f"alter table {q} add constraint {t}_status_{n} check (status in ('draft', 'published', 'archived'))"
                f" not valid;\nalter table {q} validate constraint {t}_status_{n};\n")
    if kind == "index":
        return f"create index {t}_created_{n}_idx on {q} (user_id, created_at desc);\n"
    if kind == "function":
        return f"""create or replace function private.f{n}(p_id uuid) returns jsonb
  language plpgsql stable security definer set search_path = ''
as $$
begin
  return (select to_jsonb(x) from {q} x where x.id = p_id and x.user_id = (select auth.uid()));
end;
$$;
revoke execute on function private.f{n}(uuid) from public, anon;
grant execute on function private.f{n}(uuid) to authenticated;
"""
    if kind == "rpc":
        return f"""create or replace function public.count_{t}_{n}() returns bigint language sql stable set search_path = ''
as $$ select count(*) from {q} where user_id = (select auth.uid()) $$;
grant execute on function public.count_{t}_{n}() to authenticated;
"""
    if kind == "trigger" and ("trigger", t) not in once:
        once.add(("trigger", t))
        return f"create trigger {t}_updated_at before update on {q} for each row execute function public.set_updated_at();\n"
    if kind == "policy":
        return (f'drop policy if exists "{t} owner reads" on {q};\n'
                f'create policy "{t} owner reads" on {q} for select to authenticated\n'
                f"  using ((select auth.uid()) = user_id and status <> 'archived');\n")
    if kind == "view":
        return (f"create or replace view public.v{n} with (security_invoker = true) as\n"
                f"  select id, user_id, title from {q} where status = 'published';\n"
                f"grant select on public.v{n} to authenticated;\n")
    if kind == "grant":
        return f"revoke all on table {q} from anon;\ngrant select, insert, update on table {q} to authenticated;\n"
    if kind == "storage":
        return f"""insert into storage.buckets (id, name, public) values ('b{n}', 'b{n}', false);
create policy "b{n} owner reads" on storage.objects for select to authenticated
  using (bucket_id = 'b{n}' and (storage.foldername(name))[1] = (select auth.uid())::text);
create policy "b{n} owner uploads" on storage.objects for insert to authenticated
  with check (bucket_id = 'b{n}' and (storage.foldername(name))[1] = (select auth.uid())::text);
"""
    if kind == "enum":
        return (f"create type public.e{n} as enum ('low', 'normal', 'high');\n"
                f"alter table {q} add column priority_{n} public.e{n} not null default 'normal';\n")
    if kind == "backfill":
        return f"update {q} set status = 'published' where status = 'draft' and created_at < now() - interval '30 days';\n"
    if kind == "comment":
        return f"comment on table {q} is 'Rows owned by one user ({n}).';\ncomment on column {q}.title is 'Shown in lists.';\n"
    if kind == "webhook":
        return f"""create or replace function private.notify_{n}() returns trigger
  language plpgsql security definer set search_path = ''
as $$
begin
  perform net.http_post(url := 'https://hooks.example.invalid/{n}', body := jsonb_build_object('id', new.id));
  return new;
end;
$$;
create trigger {t}_notify_{n} after insert on {q} for each row execute function private.notify_{n}();
"""
    if kind == "realtime" and ("realtime", t) not in once:
        once.add(("realtime", t))
        return f"alter publication supabase_realtime add table {q};\n"
    if kind == "cron":
        return f"select cron.schedule('archive-{t}-{n}', '{n % 60} 3 * * *', $$update {q} set status = 'archived' where updated_at < now() - interval '1 year'$$);\n"
    return f"comment on column {q}.status is 'draft, published or archived ({n}).';\n"


APP_KINDS = ("table", "column", "function", "index", "trigger", "policy", "table", "view", "grant", "rpc",
             "storage", "check", "enum", "backfill", "table", "comment", "webhook", "realtime", "column", "cron")


def generate_app_shaped(directory: Path, count: int = 1262) -> Path:
    """`count` migrations in the mix of a long-lived Supabase app: every few files a new
    table with RLS, the others change earlier tables (round robin over the kinds)."""
    migrations = directory / "supabase" / "migrations"
    migrations.mkdir(parents=True)
    tables: list[str] = []
    once: set = set()
    version = 20230101000000
    for n in range(count):
        kind = "prelude" if n == 0 else APP_KINDS[n % len(APP_KINDS)]
        if kind == "prelude":
            sql = APP_PRELUDE
        elif kind == "table" or not tables:
            sql, kind = _app_table(n), "table"
            tables.append(f"t{n}")
        else:
            sql = _app_change(kind, n, tables[(n * 7) % len(tables)], once)
        (migrations / f"{version + n}_{kind}_{n}.sql").write_text(sql)
    return migrations


def measure(label: str, migrations_dir: Path, repeat: int, limit: float) -> list[tuple[str, bool]]:
    migrations = load_migrations(migrations_dir)
    statements = sum(len(m.statements) for m in migrations)
    print(f"\n{label}: {len(migrations)} migrations, {statements} statements", flush=True)

    static = Samples()
    for _ in range(repeat):
        started = time.perf_counter()
        analyse(migrations)
        static.append(time.perf_counter() - started)
    rate = statements / static.median

    command = [str(ROOT / ".venv" / "bin" / "supagate"), "check", "--migrations", str(migrations_dir),
               "--stack", "prod", "--format", "json"]
    first, _ = timed(command, cwd=ROOT)
    check = Samples()
    for _ in range(repeat):
        elapsed, done = timed(command, cwd=ROOT)
        if done.returncode not in (0, 1) or not done.stdout.startswith("{"):
            raise SystemExit(f"supagate check failed: {done.stderr[-2000:]}")
        if "migration-failed" in done.stdout:
            raise SystemExit(f"{label}: a migration failed in the shadow database:\n{done.stdout[:2000]}")
        if "Supabase's advisors" not in done.stderr:
            raise SystemExit("supagate check did not run the advisors")
        check.append(elapsed)

    squawk = Samples()
    paths = [str(m.path) for m in migrations]
    for _ in range(repeat):
        squawk.append(timed([squawk_path(), "--reporter", "json", "--pg-version", "15.0", *paths])[0])

    advisors = Samples()
    cli = node_tool("supabase", ROOT)
    with EmbeddedPostgres() as pg:
        runner.migrate(pg.url, migrations, runner.Options(include_all=True), progress=lambda _: None)
        for _ in range(repeat):
            with tempfile.TemporaryDirectory() as workdir:
                (Path(workdir) / "supabase").mkdir()
                elapsed, done = timed([cli, "--workdir", workdir, "db", "advisors", f"--remote={pg.url}",
                                       "--type", "all", "--output-format", "json"])
            if done.returncode != 0:
                raise SystemExit(f"supabase db advisors failed: {done.stderr[-2000:]}")
            advisors.append(elapsed)

    print(f"  static analysis (in process)  {static}  {rate:,.0f} statements/s")
    print(f"  supagate check (everything)   {check}  (first run {first:.2f} s)")
    print(f"  supabase db advisors alone    {advisors}  -> check is {check.median / advisors.median:.1f}x")
    print(f"  squawk alone                  {squawk}  -> check is {check.median / squawk.median:.0f}x")
    print(f"  check / (advisors + squawk)   {check.median / (advisors.median + squawk.median):.2f}x: the rest is "
          "the shadow apply, catalog checks and probes", flush=True)
    return [target(f"{label}: check seconds", check.median, limit, " s"),
            target(f"{label}: static analysis", rate, 2000, " stmt/s", at_least=True)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tables", type=int, default=500)
    parser.add_argument("--app-migrations", type=int, default=1262)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--only", default="example,500,app")
    args = parser.parse_args()
    fresh_bytecode(ROOT)
    only = set(args.only.split(","))
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        if "example" in only:
            results += measure("example app (supabase/migrations)", ROOT / "supabase" / "migrations", args.repeat, 15)
        if "500" in only:
            results += measure(f"generated project ({args.tables} tables)",
                               generate_tables(Path(tmp) / "tables", args.tables), args.repeat, 6)
        if "app" in only:
            results += measure(f"app-shaped project ({args.app_migrations} migrations)",
                               generate_app_shaped(Path(tmp) / "app", args.app_migrations), args.repeat, 10)
    missed = [label for label, met in results if not met]
    print(f"\n{len(results) - len(missed)}/{len(results)} targets met" + (f"; MISSED: {', '.join(missed)}" if missed else ""))


if __name__ == "__main__":
    main()
