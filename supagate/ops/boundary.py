"""Proof, before anything is deployed, that custom `sql` alert rules pass the privilege
boundary they run behind (ops.sql, "alert-rule boundary"): the migrations are applied to a
throwaway shadow database, then each rule is evaluated there exactly as the evaluation job
runs it (as supagate_alert_reader, read-only, in a statement of its own under its timeout,
capped at PROOF_CAP_MS: an empty database answers a sound rule in milliseconds), and the
tables it reads are checked for row level security that would hide every row from it.

What cannot be proven (no PostgreSQL here, a migration that fails in the shadow, an ops
schema of another version) is reported for every rule: never a pass."""

from __future__ import annotations

from typing import Any, Callable

READER = "supagate_alert_reader"
PROOF_CAP_MS = 2000
FIX = (f"An alert rule runs as {READER} in a read-only transaction under its own timeout: it reads only what a "
       f"migration grants that role (grant select on <table> to {READER}; with row level security also "
       f"create policy ... for select to {READER} using (true)), calls nothing that writes, sleeps or reads "
       "supagate's, Vault's or pg_cron's schemas, and answers fast. Move writes to a maintenance job.")


def prove(migrations: list, rules: list[dict[str, Any]], exposed: tuple[str, ...],
          progress: Callable[[str], None] = lambda _: None) -> dict[str, str]:
    """Rule name -> why the boundary refuses it, or why it could not be proven; a rule that
    is not named passed. Raises nothing for a database problem: that is every rule's problem."""
    from supagate.gates.shadow.database import ShadowDatabase
    from supagate.gates.shadow.gaps import GapRule
    from supagate.migrations import runner
    from supagate.ops.alerts import OpsMissing, evaluate
    from supagate.postgres.connect import connect

    names = [rule["name"] for rule in rules]
    if not rules:
        return {}
    try:
        with ShadowDatabase(exposed, progress=progress) as shadow:
            url = shadow.url()
            progress(f"Proving {len(rules)} sql alert rule(s) in the shadow database...")
            try:
                runner.migrate(url, migrations, runner.Options(include_all=True, lock_wait=5),
                               progress=lambda _: None, gaps=GapRule())
            except runner.MigrationError as exc:
                return dict.fromkeys(names, f"not proven: the migrations fail in the shadow database ({exc})")
            with connect(url) as conn:
                try:
                    states = evaluate(conn, rules, cap_ms=PROOF_CAP_MS)
                except OpsMissing as exc:
                    return dict.fromkeys(names, f"not proven: {exc}")
                problems = {s["rule"]: s["error"] for s in states if s.get("error")}
                for rule in rules:
                    if rule["name"] not in problems:
                        hidden = hidden_by_row_security(conn, rule["params"]["query"])
                        if hidden:
                            problems[rule["name"]] = (
                                f"it reads {', '.join(hidden)}, which row level security hides from {READER} "
                                "entirely (no policy names it or PUBLIC): it would count no rows, ever")
                return problems
    except Exception as exc:  # noqa: BLE001 - no shadow (no PostgreSQL, a cluster that will not start): fail closed
        return dict.fromkeys(names, f"not proven: the shadow database could not be used ({exc})")


def hidden_by_row_security(conn, query: str) -> list[str]:
    """The tables `query` names that have row level security with no SELECT policy for the
    reader or PUBLIC: the reader sees none of their rows. Views are not followed."""
    import pglast

    from supagate.gates.catalog.nodes import walk

    try:
        nodes = pglast.parse_sql(query)
    except pglast.parser.ParseError:
        return []
    names = sorted({f"{n.schemaname}.{n.relname}" if n.schemaname else n.relname
                    for n in walk(nodes) if type(n).__name__ == "RangeVar"})
    rows = conn.execute(
        "select n.nspname || '.' || c.relname from unnest(%s::text[]) t(name) "
        "join pg_catalog.pg_class c on c.oid = pg_catalog.to_regclass(t.name) "
        "join pg_catalog.pg_namespace n on n.oid = c.relnamespace "
        "where c.relrowsecurity and c.relkind in ('r', 'p') and not exists ("
        "  select 1 from pg_catalog.pg_policy p where p.polrelid = c.oid and p.polpermissive"
        "   and p.polcmd in ('r', '*') and (0 = any(p.polroles) or %s::regrole = any(p.polroles)))",
        (names, READER)).fetchall()
    return [r[0] for r in rows]
