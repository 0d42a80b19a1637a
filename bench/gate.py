"""Benchmark: `supagate check` (static analysis + squawk + shadow database + isolation
probes + Supabase's advisors) next to the peers it wraps, run alone on the same input:
  - `supabase db advisors` (pinned 3.1.0) on a database already migrated (lints only),
  - `squawk` (pinned squawk-cli) over the same files.
Inputs: the example app (supabase/migrations) and a generated project of 500 tables in
2,000 migrations. Prints times and ratios, and static analysis throughput.
Targets: full check of the example app <= 15 s on 2 cores; static analysis >= 2,000
statements per second.

    uv run python bench/gate.py [--tables 500] [--repeat 3]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from supagate.migrations import runner  # noqa: E402
from supagate.postgres.embedded import EmbeddedPostgres  # noqa: E402
from supagate.gates.squawk import squawk_path  # noqa: E402
from supagate.migrations.files import load_migrations  # noqa: E402
from supagate.gates.catalog.replay import analyse  # noqa: E402
from supagate.tools import node_tool  # noqa: E402


def generate(directory: Path, tables: int) -> Path:
    """Four migrations per table, shaped like an app's history: create with RLS and owner
    policies; add a column; an index built concurrently in its own file; a view."""
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


def timed(cmd: list[str], cwd: Path = ROOT) -> tuple[float, subprocess.CompletedProcess]:
    started = time.perf_counter()
    done = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    return time.perf_counter() - started, done


def median(values: list[float]) -> float:
    return statistics.median(values)


def measure(label: str, migrations_dir: Path, repeat: int) -> None:
    migrations = load_migrations(migrations_dir)
    statements = sum(len(m.statements) for m in migrations)
    print(f"\n{label}: {len(migrations)} migrations, {statements} statements", flush=True)

    static = []
    for _ in range(repeat):
        started = time.perf_counter()
        analyse(migrations)
        static.append(time.perf_counter() - started)
    rate = statements / median(static)
    print(f"  static analysis (in process)     {median(static):7.2f} s  {rate:,.0f} statements/s "
          f"(target >= 2,000)")

    check = []
    for _ in range(repeat):
        elapsed, done = timed([sys.executable, "-m", "supagate.cli", "check", "--migrations", str(migrations_dir),
                               "--stack", "prod", "--format", "json"])
        if done.returncode not in (0, 1) or not done.stdout.startswith("{"):
            raise SystemExit(f"supagate check failed: {done.stderr[-2000:]}")
        if "Supabase's advisors" not in done.stderr:
            raise SystemExit("supagate check did not run the advisors")
        check.append(elapsed)

    squawk = []
    paths = [str(m.path) for m in migrations]
    for _ in range(repeat):
        elapsed, _ = timed([squawk_path(), "--reporter", "json", "--pg-version", "15.0", *paths])
        squawk.append(elapsed)

    advisors = []
    cli = node_tool("supabase", ROOT)
    with EmbeddedPostgres() as pg:
        runner.migrate(pg.url, migrations, progress=lambda _: None)
        for _ in range(repeat):
            with tempfile.TemporaryDirectory() as workdir:
                (Path(workdir) / "supabase").mkdir()
                elapsed, done = timed([cli, "--workdir", workdir, "db", "advisors", f"--remote={pg.url}",
                                       "--type", "all", "--output-format", "json"])
            if done.returncode != 0:
                raise SystemExit(f"supabase db advisors failed: {done.stderr[-2000:]}")
            advisors.append(elapsed)

    full = median(check)
    print(f"  supagate check (everything)      {full:7.2f} s")
    print(f"  supabase db advisors alone       {median(advisors):7.2f} s  -> check is {full / median(advisors):.1f}x")
    print(f"  squawk alone                     {median(squawk):7.2f} s  -> check is {full / median(squawk):.0f}x")
    print(f"  check minus the two peers        {full - median(advisors) - median(squawk):7.2f} s "
          "(static, shadow apply, catalog, probes, start-up)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tables", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    measure("example app (supabase/migrations)", ROOT / "supabase" / "migrations", args.repeat)
    with tempfile.TemporaryDirectory() as tmp:
        generated = generate(Path(tmp), args.tables)
        measure(f"generated project ({args.tables} tables)", generated, args.repeat)


if __name__ == "__main__":
    main()
