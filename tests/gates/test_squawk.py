"""squawk's lock-safety lints become advisory findings; style rules stay off."""

from __future__ import annotations

from supagate.gates.squawk import lock_findings
from supagate.migrations.files import load_migrations
from supagate.gates.check import finalize
from tests.conftest import write_migrations


def test_lock_risks_are_advisory_findings_with_one_based_lines(tmp_path):
    src = write_migrations(tmp_path, {
        "20250101000000_a.sql": "create table public.a (id int primary key, n int);\n",
        "20250102000000_b.sql": "-- an existing table gets a required column\n"
                                "alter table public.a add column owner text not null;\n",
    })
    findings = finalize(lock_findings(load_migrations(src)), "production", {})
    assert [(f.rule, f.line, f.enforcement) for f in findings] == [("squawk/adding-required-field", 2, "advisory")]
    assert findings[0].file.endswith("20250102000000_b.sql") and findings[0].fix


def test_concurrent_index_file_is_linted_outside_a_transaction(tmp_path):
    src = write_migrations(tmp_path, {
        "20250101000000_a.sql": "create table public.a (id int primary key, n int);\n",
        "20250102000000_idx.sql": "create index concurrently a_n_idx on public.a (n);\n",
    })
    assert lock_findings(load_migrations(src)) == []  # no "concurrently in a transaction" lint
