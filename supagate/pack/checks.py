"""What each CrossGuard policy checks, as plain functions of a resource's inputs.

The pack's modules in policies/ only name, describe and register these; the logic lives
here so the pack, `supagate plan` and the tests run the same code. Each function returns
the Findings that violate it (empty: compliant), or None when the policy does not apply.
An input a check cannot read is a violation that says so, never a pass. Migrations are
always re-analysed from the SQL in the inputs.
"""

from __future__ import annotations

import ipaddress
import json
from functools import lru_cache
from typing import Any, Iterable

from supagate.errors import BadInput
from supagate.findings import Finding
from supagate.gates.catalog import replay
from supagate.gates.catalog.model import DEFAULT_EXPOSED_SCHEMAS
from supagate.gates.registry import PER_STATEMENT_RULES
from supagate.gates.rules import not_promoted
from supagate.migrations.files import sha256
from supagate.offline.resource_types import (MIGRATIONS, PROJECT_SETTINGS, SECRET_INPUTS, from_engine,
                                             migrations_from_inputs)



def _violation(check: str, obj: str, message: str, fix: str) -> Finding:
    return Finding(check, obj, message, fix, source="pack")


def _unreadable(check: str, obj: str, what: str, value: Any, fix: str) -> Finding:
    return _violation(check, obj, f"The policy cannot evaluate {what}: {value!r} is not a value it can read.", fix)


def plain(value):
    """Policy inputs arrive wrapped in read-only proxies, numbers as doubles (protobuf); json
    and messages need plain data with whole numbers as ints."""
    if hasattr(value, "items"):
        return {k: plain(v) for k, v in value.items()}
    if hasattr(value, "__iter__") and not isinstance(value, (str, bytes)):
        return [plain(v) for v in value]
    return from_engine(value)


# ---------------------------------------------------------------- migrations

@lru_cache(maxsize=8)
def _analysis(key: tuple) -> tuple[list[Finding], dict] | str:
    """Static analysis of one migration set, shared by the per-rule policies of one run."""
    migrations_json, exposed = key
    try:
        migrations = migrations_from_inputs({"migrations": json.loads(migrations_json)})
        analysis = replay.analyse(migrations, exposed)
    except BadInput as exc:
        return str(exc)
    except (KeyError, TypeError, AttributeError, ValueError) as exc:
        return f"the migrations input is malformed ({type(exc).__name__}: {exc})"
    return analysis.findings, analysis.markers


def _analyse_inputs(props: dict[str, Any], exposed: Iterable[str]) -> tuple[list[Finding], dict] | str:
    migrations = plain(props.get("migrations"))
    if not isinstance(migrations, list) or not all(isinstance(m, dict) for m in migrations):
        return f"the migrations input is {type(migrations).__name__}, not a list of migrations"
    return _analysis((json.dumps(migrations, sort_keys=True), tuple(exposed)))


def _exposed(props: dict[str, Any]) -> tuple[str, ...] | None:
    exposed = plain(props.get("exposed_schemas")) or list(DEFAULT_EXPOSED_SCHEMAS)
    if not isinstance(exposed, list) or not all(isinstance(s, str) for s in exposed):
        return None
    return tuple(exposed)


def migration_findings(props: dict[str, Any], rule: str) -> list[Finding]:
    exposed = _exposed(props)
    if exposed is None:
        return [_unreadable(rule, "migrations", "the exposed schemas", props.get("exposed_schemas"),
                            "Pass exposed_schemas as a list of schema names.")]
    result = _analyse_inputs(props, exposed)
    if isinstance(result, str):
        return [_violation(rule, "migrations", f"The migrations cannot be analysed: {result}",
                           "Fix the migration named above; `supagate check` shows the same error.")]
    findings, markers = result
    baseline = str(props.get("baseline") or "")
    history = {f"supabase/migrations/{m.get('version')}_{m.get('name')}.sql" for m in plain(props.get("migrations"))
               if baseline and str(m.get("version")) <= baseline}
    kept = []
    for finding in findings:
        if finding.rule != rule or finding.advisory_reason is not None:
            continue  # advisory by the rule's own reason: `supagate check` reports it
        if rule in PER_STATEMENT_RULES and finding.file in history:
            continue
        file_markers = markers.get(finding.file or "")
        if file_markers and file_markers.allowed(rule, finding.line):
            continue  # reported by `supagate check` as allowed; the pack enforces the rest
        kept.append(finding)
    return kept


def checksum_mismatches(props: dict[str, Any]) -> list[Finding]:
    check = "checksums"
    migrations = plain(props.get("migrations"))
    if not isinstance(migrations, list):
        return [_unreadable(check, "migrations", "the migrations", migrations,
                            "Rebuild the program's inputs from supabase/migrations.")]
    found = []
    for migration in migrations:
        migration = migration if isinstance(migration, dict) else {}
        sql = migration.get("sql")
        name = f"{migration.get('version')}_{migration.get('name')}"
        if not isinstance(sql, str):
            found.append(_violation(check, name, f"Migration {name} has no SQL the pack can read.",
                                    "Pass the file contents as `sql`."))
        elif migration.get("checksum") != sha256(sql):
            found.append(_violation(check, name, f"Migration {name}: the checksum does not match its SQL.",
                                    "Rebuild the program's inputs from supabase/migrations."))
    return found


def promotion_violations(props: dict[str, Any]) -> list[Finding] | None:
    """None when the resource has no promotion input (staging itself)."""
    promotion = plain(props.get("promotion"))
    if not promotion:
        return None
    if not isinstance(promotion, dict):
        return [_unreadable("not-promoted", "promotion", "the promotion input", promotion,
                            "Pass {stack, checksums} read from the staging stack's outputs.")]
    try:
        migrations = migrations_from_inputs(props)
    except (BadInput, KeyError, TypeError, AttributeError) as exc:
        return [_violation("not-promoted", "migrations", f"The migrations cannot be analysed: {exc}",
                           "Fix the migration named above; `supagate check` shows the same error.")]
    staged = promotion.get("checksums")
    return not_promoted.findings(migrations, staged if isinstance(staged, dict) else None,
                                 promotion.get("stack") or "staging")


def function_promotion_violations(promotion: dict[str, Any], functions: dict[str, str]) -> list[Finding]:
    """Every function bound for prod runs the code staging runs (same content hash)."""
    promotion = plain(promotion)
    functions = plain(functions) or {}
    staged = promotion.get("function_hashes") if isinstance(promotion, dict) else None
    stack = (promotion.get("stack") if isinstance(promotion, dict) else None) or "staging"
    fix = "Deploy this commit to staging first (pulumi up --stack staging), then promote the same commit to prod."
    if not isinstance(staged, dict):
        return [_violation("not-promoted", "functions", f"Staging ({stack}) exports no functionHashes, so the "
                           "functions prod would deploy cannot be compared with staging's.", fix)]
    return [_violation("not-promoted", slug, f"Edge function {slug} would deploy code staging ({stack}) does not run.",
                       fix) for slug, digest in sorted(functions.items()) if staged.get(slug) != digest]


def rls_coverage(resources: Iterable[tuple[str, dict[str, Any]]]) -> list[Finding]:
    """Stack-wide: every table in a schema the API exposes (as the project settings say,
    or else as the migrations resource says) ends the migrations with RLS on."""
    check = "rls-coverage"
    resources = list(resources)
    api_schemas: set[str] = set()
    for type_, props in resources:
        if type_ == PROJECT_SETTINGS:
            postgrest = plain(props.get("postgrest")) or {}
            schema_list = postgrest.get("db_schema", "") if isinstance(postgrest, dict) else None
            if not isinstance(schema_list, str):
                return [_unreadable(check, "postgrest", "the API's exposed schemas", schema_list,
                                    "Pass postgrest.db_schema as a comma-separated list.")]
            api_schemas |= {s.strip() for s in schema_list.split(",") if s.strip()}
    found = []
    for type_, props in resources:
        if type_ != MIGRATIONS:
            continue
        exposed = _exposed(props)
        if exposed is None:
            return [_unreadable(check, "migrations", "the exposed schemas", props.get("exposed_schemas"),
                                "Pass exposed_schemas as a list of schema names.")]
        result = _analyse_inputs(props, sorted(api_schemas | set(exposed)))
        if isinstance(result, str):
            return [_violation(check, "migrations", f"The migrations cannot be analysed: {result}",
                               "Fix the migration named above; `supagate check` shows the same error.")]
        found += [f for f in result[0] if f.rule in ("rls-missing", "rls-disabled")]
    return found
