"""Supabase's advisor lints that say what one of our rules says merge into ours (ours
carries the file, line and fix); the others are kept under advisor/<lint>."""

from __future__ import annotations

from supagate.findings import Finding
from supagate.gates.shadow.advisors import advisor_findings


def _lint(name: str, schema: str, obj: str, level: str = "WARN") -> dict:
    return {"name": name, "level": level, "title": name, "detail": f"{schema}.{obj} is flagged",
            "metadata": {"schema": schema, "name": obj}, "remediation": "https://supabase.com/docs/guides/database"}


def test_equivalent_lints_merge_into_our_rule_and_others_stay():
    ours = [Finding("function-search-path", "public.lookup", "m", "f", source="shadow"),
            Finding("foreign-table-exposed", "public.stripe_customers", "m", "f", source="shadow"),
            Finding("view-security-definer", "public.summary", "m", "f", source="shadow")]
    lints = [_lint("function_search_path_mutable", "public", "lookup"),
             _lint("foreign_table_in_api", "public", "stripe_customers"),
             _lint("security_definer_view", "public", "summary", "ERROR"),
             _lint("security_definer_view", "public", "other_view", "ERROR"),
             _lint("unused_index", "public", "idx")]
    found = advisor_findings(lints, ours)
    assert [(f.rule, f.object) for f in found] == [("advisor/security_definer_view", "public.other_view")]


def test_lints_on_the_probes_helper_are_not_the_apps():
    """The advisors run beside the probes, whose helper schema exists meanwhile."""
    lints = [_lint("function_search_path_mutable", "supagate_probe", "seed"),
             _lint("function_search_path_mutable", "public", "seed")]
    assert [f.object for f in advisor_findings(lints, [])] == ["public.seed"]
