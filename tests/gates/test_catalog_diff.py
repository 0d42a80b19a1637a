"""The shadow's catalog diff on its own terms: a type change that keeps every value is no
loss (static analysis alone cannot tell, so the pack, which has no shadow, still asks for
an approval); the snapshot costs one query per file."""

from __future__ import annotations

from supagate.gates.check import CheckOptions, run_gates
from supagate.migrations.files import load_migrations
from tests.conftest import write_migrations

STEPS = ("create table public.steps (id bigint primary key, user_id uuid not null references auth.users, "
         "count int, code varchar(20), amount numeric(10,2));\n"
         "alter table public.steps enable row level security;\n"
         "create policy own on public.steps for all to authenticated using ((select auth.uid()) = user_id) "
         "with check ((select auth.uid()) = user_id);\n")


def _destructive(tmp_path, db_url, change: str) -> list:
    src = write_migrations(tmp_path, {"20250101000000_steps.sql": STEPS, "20250102000000_change.sql": change})
    report = run_gates(load_migrations(src), CheckOptions(stack="prod", shadow_db_url=db_url, advisors=False))
    return [f for f in report.findings if f.rule == "destructive-unapproved"]


def test_widening_type_changes_are_no_loss(tmp_path, db_url):
    assert _destructive(tmp_path, db_url, "alter table public.steps alter column count type bigint;\n"
                                          "alter table public.steps alter column code type varchar(200);\n"
                                          "alter table public.steps alter column amount type numeric(14,2);") == []


def test_narrowing_type_changes_are_losses(tmp_path, db_url):
    found = _destructive(tmp_path, db_url, "alter table public.steps alter column code type varchar(5);\n"
                                           "alter table public.steps alter column amount type numeric(10,0);")
    assert {f.object for f in found} == {"public.steps.code", "public.steps.amount"}
    assert all(f.enforcement == "mandatory" for f in found)
