"""Realistic apps (tests/gates/apps/<app>/migrations), written from what public Supabase
apps do: each applies in the Supabase-shaped shadow database, and the check finds exactly
the mandatory rules its expect.yaml names (and at least its advisory ones)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from supagate.findings import MANDATORY
from supagate.gates.check import CheckOptions, run_gates
from supagate.migrations.files import load_migrations
from tests.gates import golden

APPS = Path(__file__).parent / "apps"


@pytest.mark.parametrize("app", sorted(p.name for p in APPS.iterdir() if p.is_dir()))
def test_app_applies_and_gets_the_right_findings(app, db_url):
    expect = yaml.safe_load((APPS / app / "expect.yaml").read_text())
    migrations = load_migrations(APPS / app / "migrations")
    report = run_gates(migrations, CheckOptions(stack="prod", shadow_db_url=db_url, advisors=False,
                                                baseline=expect.get("baseline", "")))
    golden.assert_unchanged(f"app {app}", report.findings)
    summary = [(f.rule, f.enforcement, f.object, f.message) for f in report.findings]
    assert "migration-failed" not in {f.rule for f in report.findings}, summary
    assert {f.rule for f in report.findings if f.enforcement == MANDATORY} == set(expect["mandatory"]), summary
    assert set(expect["advisory"]) <= {f.rule for f in report.findings if f.enforcement != MANDATORY}, summary


@pytest.mark.parametrize("app", sorted(p.name for p in APPS.iterdir() if p.is_dir()))
def test_whole_check_finds_what_the_sequential_pipeline_found(app, supabase_cli):
    """Everything at once, as `supagate check` runs it: a throwaway shadow cluster booting
    during static analysis, squawk beside it, probes over several connections and Supabase's
    advisors beside the probes; the findings equal the sequential pipeline's."""
    expect = yaml.safe_load((APPS / app / "expect.yaml").read_text())
    report = run_gates(load_migrations(APPS / app / "migrations"),
                       CheckOptions(stack="prod", supabase_cli=supabase_cli, baseline=expect.get("baseline", "")))
    golden.assert_unchanged(f"whole check {app}", report.findings)
