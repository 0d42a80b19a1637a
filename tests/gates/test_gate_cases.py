"""Every gate rule's pass/fail cases (tests/gates/cases/<rule>.yaml), each run through the
whole check: static analysis, squawk and a shadow database in the session's cluster (the
advisors have tests of their own; running them per case would cost a second each)."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest
import yaml

from supagate.migrations import runner
from supagate.gates.catalog import replay as static_analysis
from supagate.gates.check import CheckOptions, run_gates as check
from supagate.migrations.files import load_migrations
from supagate.gates.registry import MANDATORY, RULES
from tests.conftest import write_migrations
from tests.gates import golden

CASES_DIR = Path(__file__).parent / "cases"


def _cases():
    for path in sorted(CASES_DIR.glob("*.yaml")):
        document = yaml.safe_load(path.read_text())
        for case in document["cases"]:
            yield pytest.param(document["rule"], document.get("advisory", False), case,
                               id=f"{document['rule']}:{case['expect']}:{case['name']}")


def _directory(root: Path, files: dict[str, str], down: dict[str, str] | None = None) -> Path:
    write_migrations(root, files)
    for stem, sql in (down or {}).items():
        write_migrations(root / "down", {f"{stem}.down.sql": sql})
    return root


def _history_db(cluster, tmp_path: Path, name: str, files: dict[str, str]) -> str:
    url = cluster.create_database(f"{name}_{tmp_path.name[-20:].replace('-', '_')}".lower())
    if files:
        runner.migrate(url, load_migrations(_directory(tmp_path / name, files)), progress=lambda _: None)
    return url


def test_every_rule_has_three_unsafe_and_two_safe_cases():
    counts: dict[str, dict[str, int]] = {}
    for path in CASES_DIR.glob("*.yaml"):
        document = yaml.safe_load(path.read_text())
        assert document["rule"] in RULES, f"{path.name}: unknown rule"
        for case in document["cases"]:
            counts.setdefault(document["rule"], {"unsafe": 0, "safe": 0})[case["expect"]] += 1
    rules_with_cases = set(RULES) - {"probe-incomplete"}  # a probe limitation, not a risk in the SQL
    assert set(counts) == rules_with_cases
    for rule, count in counts.items():
        assert count["unsafe"] >= 3 and count["safe"] >= 2, (rule, count)


@pytest.mark.parametrize("rule, advisory_rule, case", list(_cases()))
def test_gate_case(rule, advisory_rule, case, cluster, db_url, tmp_path, request):
    migrations = load_migrations(_directory(tmp_path / "migrations", case["migrations"], case.get("down")))
    options = CheckOptions(stack="prod", shadow_db_url=db_url, advisors=False)
    if "applied" in case:
        options.target_db_url = _history_db(cluster, tmp_path, "target", case["applied"])
    if "staging" in case:
        options.staging_db_url = _history_db(cluster, tmp_path, "staging", case["staging"])
    report = check(migrations, options)
    golden.assert_unchanged(f"case {request.node.callspec.id}", report.findings)
    summary = [(f.rule, f.enforcement, f.object, f.file, f.line, f.allowed) for f in report.findings]
    of_rule = [f for f in report.findings if f.rule == rule and f.allowed is None]
    if case.get("shadow_only"):  # dynamic SQL: the proof that the shadow database is needed
        assert rule not in {f.rule for f in static_analysis.analyse(migrations).findings}
    if case["expect"] == "unsafe":
        assert of_rule, f"expected a {rule} finding, got {summary}"
        if advisory_rule:
            assert all(f.enforcement != MANDATORY for f in of_rule)
        else:
            assert any(f.enforcement == MANDATORY for f in of_rule), summary
            assert report.blocked
        assert all(f.message and f.fix for f in of_rule)
    else:
        assert not of_rule, f"unexpected {rule} finding: {summary}"
        assert not report.blocked, summary


def test_probes_find_the_same_whatever_the_number_of_lanes(cluster, app_db_url, tmp_path):
    """Probes run over several connection pairs at once; the findings (and their order) are
    those of one lane, on every isolation case and on the test app."""
    from supagate.gates.shadow.probes import isolation_probes
    from tests.conftest import APP_MIGRATIONS

    document = yaml.safe_load((CASES_DIR / "rls-isolation-leak.yaml").read_text())
    sources = [(cluster.create_database(f"lanes_{i}_{tmp_path.name[-12:].replace('-', '_')}".lower()),
                load_migrations(_directory(tmp_path / f"case{i}", case["migrations"], case.get("down"))))
               for i, case in enumerate(document["cases"])]
    sources.append((app_db_url, load_migrations(APP_MIGRATIONS)))  # pg_cron needs a cluster's postgres database
    # Twelve tables, every other one leaking: four lanes interleave them, the order must not change.
    many = "\n".join(
        f"create table public.t{i:02d} (id bigint generated always as identity primary key, "
        f"user_id uuid not null references auth.users, note text);\n"
        f"alter table public.t{i:02d} enable row level security;\n"
        f"create policy p on public.t{i:02d} for all to authenticated using "
        + ("(true) with check (true);" if i % 2 else "((select auth.uid()) = user_id) with check ((select auth.uid()) = user_id);")
        for i in range(12))
    sources.append((cluster.create_database(f"lanes_many_{tmp_path.name[-12:].replace('-', '_')}".lower()),
                    load_migrations(_directory(tmp_path / "many", {"20250101000000_many.sql": many}))))
    compared = 0
    for url, migrations in sources:
        runner.migrate(url, migrations, runner.Options(include_all=True), progress=lambda _: None)
        with psycopg.connect(url, autocommit=True) as conn:
            one = isolation_probes(conn, url, ("public", "graphql_public"), workers=1)
            four = isolation_probes(conn, url, ("public", "graphql_public"), workers=4)
        assert [f.__dict__ for f in one[0]] == [f.__dict__ for f in four[0]] and one[1] == four[1]
        compared += one[1]
    assert compared >= 25 and len(one[0]) >= 6  # the last source: 12 tables, 6 of them leaking
