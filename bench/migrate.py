"""Benchmark: apply N generated migrations to fresh databases with
  - our engine (`supagate migrate`, a whole process, as users run it),
  - the Supabase CLI (`supabase db push --db-url`, pinned 3.1.0),
  - one `psql --single-transaction -f` of the concatenated files (the floor: no history,
    no per-file transaction, no checks).
All three run side by side on the same throwaway PostgreSQL 15, each on a new database,
median of --repeat runs. Prints times and ratios; targets at N=200: ours <= 1.0x db push
and <= 1.5x the psql floor.

    uv run python bench/migrate.py [--sizes 50,200,1000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import itertools
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from supagate.postgres.connect import libpq_env  # noqa: E402
from supagate.postgres.embedded import EmbeddedPostgres  # noqa: E402
from supagate.postgres.pgtap import find_psql  # noqa: E402

_ids = itertools.count()


def generate(directory: Path, n: int) -> None:
    """N migrations shaped like an app's: a table, RLS, an owner policy, an index, a seed row."""
    (directory / "supabase" / "migrations").mkdir(parents=True)
    for i in range(n):
        sql = f"""-- generated migration {i}
create table public.bench_{i} (
  id bigint generated always as identity primary key,
  user_id uuid not null default auth.uid(),
  value numeric not null default 0,
  note text default 'a;b',
  created_at timestamptz not null default now()
);
alter table public.bench_{i} enable row level security;
create policy "owner reads bench_{i}" on public.bench_{i}
  for select to authenticated using (user_id = (select auth.uid()));
create index bench_{i}_user_idx on public.bench_{i} (user_id, created_at desc);
insert into public.bench_{i} (user_id, value) values ('aaaaaaaa-0000-0000-0000-00000000000a', {i});
"""
        (directory / "supabase" / "migrations" / f"{20240101000000 + i}_bench_{i}.sql").write_text(sql)


def timed(cmd: list[str], env: dict, cwd: Path) -> float:
    started = time.perf_counter()
    proc = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"benchmark command failed: {' '.join(cmd[:3])}...\n{proc.stderr[-2000:]}")
    return elapsed


def run_once(pg: EmbeddedPostgres, project: Path, tool: str) -> float:
    url = pg.create_database(f"bench_{next(_ids)}")
    env = {**os.environ, "SUPABASE_TELEMETRY_DISABLED": "1", "DO_NOT_TRACK": "1"}
    migrations = project / "supabase" / "migrations"
    if tool == "supagate":
        return timed([str(ROOT / ".venv" / "bin" / "supagate"), "migrate", "--migrations", str(migrations)],
                     {**env, "SUPABASE_DB_URL": url}, project)
    if tool == "db push":
        cli = ROOT / "node_modules" / ".bin" / "supabase"
        return timed([str(cli), "--workdir", str(project), "db", "push", "--db-url", url, "--yes"], env, project)
    concatenated = project / "all.sql"
    if not concatenated.exists():
        concatenated.write_text("\n".join(p.read_text() for p in sorted(migrations.glob("*.sql"))))
    return timed([find_psql(), "-X", "-q", "--single-transaction", "-v", "ON_ERROR_STOP=1", "-f",
                  str(concatenated)], {**env, **libpq_env(url)}, project)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="50,200,1000")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    tools = ["supagate", "db push", "psql floor"]
    rows = []
    with EmbeddedPostgres() as pg:
        for n in [int(s) for s in args.sizes.split(",")]:
            project = Path(tempfile.mkdtemp(prefix=f"bench-migrate-{n}-"))
            try:
                generate(project, n)
                times = {t: [] for t in tools}
                for _ in range(args.repeat):
                    for tool in tools:  # interleaved, so drift in machine load hits all three alike
                        times[tool].append(run_once(pg, project, tool))
                median = {t: statistics.median(v) for t, v in times.items()}
                rows.append((n, median))
                print(f"N={n:5d}  supagate {median['supagate']:7.2f} s   db push {median['db push']:7.2f} s   "
                      f"psql floor {median['psql floor']:7.2f} s   "
                      f"ours/db push {median['supagate'] / median['db push']:5.2f}x   "
                      f"ours/floor {median['supagate'] / median['psql floor']:5.2f}x", flush=True)
            finally:
                shutil.rmtree(project, ignore_errors=True)
    for n, median in rows:
        if n == 200:
            ok_push = median["supagate"] <= 1.0 * median["db push"]
            ok_floor = median["supagate"] <= 1.5 * median["psql floor"]
            print(f"target at N=200: ours <= 1.0x db push: {'met' if ok_push else 'MISSED'}; "
                  f"ours <= 1.5x psql floor: {'met' if ok_floor else 'MISSED'}")


if __name__ == "__main__":
    main()
