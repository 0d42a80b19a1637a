"""What a migration changed in the shadow database's catalog.

A snapshot holds the catalog objects whose loss or widening matters: relations by oid (so
a table dropped and created again is a loss: its rows are gone), table columns and their
types, schemas, functions, policies with their roles and expressions, triggers, owners,
the API roles' privileges and default privileges, and pg_cron's jobs. `diff` of the
snapshots before and after a file is what the file did, however its SQL was spelled:

- losses (destructive-unapproved unless approved with a down script): a table, column or
  schema dropped (`drop type ... cascade` too), a type changed in a way that can lose
  values, an existing table renamed, an owner changed or an object created under another
  role than the migration role, a restrictive policy removed or loosened, a trigger
  removed, disabled or limited to replication sessions;
- widened types (no finding: they keep every value) and privileges an API role gains on an
  existing object or by default (privilege-widened, advisory: the end-state rules judge
  the exposure; RLS switched off is rls-missing/rls-disabled, read from the final catalog).

Objects the file created are never a loss. Rows removed are the statement log's
(statement_log.py); attribution and findings are file_effects.py's."""

from __future__ import annotations

import re
from dataclasses import dataclass


API_ROLES = ("anon", "authenticated", "public")
_SKIP_SCHEMAS = ("pg_catalog", "information_schema", "pg_toast", "supabase_migrations", "supagate_probe")
_SCOPE = ("n.nspname NOT IN ({}) AND n.nspname NOT LIKE 'pg\\_temp\\_%' AND n.nspname NOT LIKE 'pg\\_toast\\_temp\\_%'"
          .format(", ".join(f"'{s}'" for s in _SKIP_SCHEMAS)))
_API_PRIVS = ("ARRAY(SELECT DISTINCT CASE a.grantee WHEN 0 THEN 'public' ELSE pg_get_userbyid(a.grantee) END "
              "|| ':' || a.privilege_type FROM aclexplode({acl}) a WHERE a.grantee = 0 "
              "OR pg_get_userbyid(a.grantee) IN ('anon', 'authenticated') ORDER BY 1)")
_NOT_EXTENSION = ("NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = '{catalog}'::regclass "
                  "AND d.objid = {oid} AND d.deptype = 'e')")

SNAPSHOT = ";\n".join([
    "BEGIN",
    "SET LOCAL search_path = pg_catalog",
    # relations
    "SELECT c.oid::int8, n.nspname, c.relname, c.relkind::text, c.relrowsecurity, pg_get_userbyid(c.relowner), "
    + _API_PRIVS.format(acl="coalesce(c.relacl, acldefault('r', c.relowner))")
    + " FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind IN ('r','p','v','m','f') AND "
    + _SCOPE + " AND " + _NOT_EXTENSION.format(catalog="pg_class", oid="c.oid"),
    # table columns
    "SELECT a.attrelid::int8, a.attnum, a.attname, format_type(a.atttypid, a.atttypmod) FROM pg_attribute a "
    "JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
    "WHERE c.relkind IN ('r','p') AND a.attnum > 0 AND NOT a.attisdropped AND " + _SCOPE,
    # schemas
    "SELECT n.oid::int8, n.nspname, " + _API_PRIVS.format(acl="coalesce(n.nspacl, acldefault('n', n.nspowner))")
    + " FROM pg_namespace n WHERE " + _SCOPE,
    # functions (not an extension's)
    "SELECT p.oid::int8, n.nspname || '.' || p.proname || '(' || pg_get_function_identity_arguments(p.oid) || ')', "
    "p.prosecdef, pg_get_userbyid(p.proowner), " + _API_PRIVS.format(acl="coalesce(p.proacl, acldefault('f', p.proowner))")
    + " FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE " + _SCOPE + " AND "
    + _NOT_EXTENSION.format(catalog="pg_proc", oid="p.oid"),
    # policies
    "SELECT pol.polrelid::int8, pol.polname, pol.polcmd::text, pol.polpermissive, "
    "ARRAY(SELECT CASE r WHEN 0 THEN 'public' ELSE pg_get_userbyid(r) END FROM unnest(pol.polroles) r ORDER BY 1), "
    "pg_get_expr(pol.polqual, pol.polrelid), pg_get_expr(pol.polwithcheck, pol.polrelid) FROM pg_policy pol",
    # triggers (not internal)
    "SELECT t.tgrelid::int8, t.tgname, t.tgenabled::text FROM pg_trigger t WHERE NOT t.tgisinternal",
    # default privileges
    "SELECT d.defaclrole::regrole::text || '/' || coalesce(n.nspname, '*') || '/' || d.defaclobjtype::text, "
    + _API_PRIVS.format(acl="d.defaclacl")
    + " FROM pg_default_acl d LEFT JOIN pg_namespace n ON n.oid = d.defaclnamespace",
    # is the statement log on, and where is it
    "SELECT current_setting('pg_stat_statements.track', true) = 'all' "
    "AND current_setting('pg_stat_statements.track_utility', true) = 'on', (SELECT n.nspname FROM pg_extension e "
    "JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'pg_stat_statements'), session_user::text, "
    "to_regclass('cron.job') IS NOT NULL",
    "COMMIT",
])


@dataclass(frozen=True)
class Snapshot:
    relations: dict[int, tuple]  # oid -> (schema, name, kind, rls, owner, api privileges)
    columns: dict[tuple[int, int], tuple]  # (relation oid, attnum) -> (name, type)
    schemas: dict[int, tuple]  # oid -> (name, api privileges)
    functions: dict[int, tuple]  # oid -> (signature, definer, owner, api privileges)
    policies: dict[tuple[int, str], tuple]  # (relation oid, name) -> (command, permissive, roles, using, check)
    triggers: dict[tuple[int, str], str]  # (relation oid, name) -> enabled
    defaults: dict[str, tuple]  # role/schema/kind -> api privileges
    log_on: bool
    log_schema: str | None
    role: str  # the migration role: what every object a migration creates is owned by
    jobs: dict[int, str]  # pg_cron job id -> command
    log_state: tuple | None = None  # (stats_reset, dealloc) of the statement log


def snapshot(conn) -> Snapshot:
    cur = conn.cursor()
    cur.execute(SNAPSHOT)
    results = []
    while True:
        if cur.description is not None:
            results.append(cur.fetchall())
        if not cur.nextset():
            break
    rel, col, sch, fun, pol, trg, dfl, log = results
    log_on, log_schema, role, has_cron = log[0]
    jobs = dict(conn.execute("SELECT jobid::int8, command FROM cron.job").fetchall()) if has_cron else {}
    state = None
    if log_schema is not None:
        state = tuple(conn.execute(f'SELECT stats_reset::text, dealloc FROM "{log_schema}".pg_stat_statements_info'
                                   ).fetchone())
    return Snapshot(
        relations={r[0]: (r[1], r[2], r[3], r[4], r[5], tuple(r[6])) for r in rel},
        columns={(r[0], r[1]): (r[2], r[3]) for r in col},
        schemas={r[0]: (r[1], tuple(r[2])) for r in sch},
        functions={r[0]: (r[1], r[2], r[3], tuple(r[4])) for r in fun},
        policies={(r[0], r[1]): (r[2], r[3], tuple(r[4]), r[5], r[6]) for r in pol},
        triggers={(r[0], r[1]): r[2] for r in trg},
        defaults={r[0]: tuple(r[1]) for r in dfl},
        log_on=bool(log_on), log_schema=log_schema, role=role, jobs=jobs, log_state=state)


@dataclass(frozen=True)
class Change:
    object: str  # as static analysis names it: schema.table, schema.table.column, schema
    what: str  # "drops table public.x"
    kind: str  # "loss", "widening" (a privilege), or "widened" (a type that keeps every value: no finding)
    names: tuple[str, ...] = ()  # words a statement that did it would likely contain


def diff(before: Snapshot, after: Snapshot) -> list[Change]:
    changes: list[Change] = []
    rel_name = {**{oid: f"{r[0]}.{r[1]}" for oid, r in before.relations.items()},
                **{oid: f"{r[0]}.{r[1]}" for oid, r in after.relations.items()}}
    now_by_name = {f"{r[0]}.{r[1]}": oid for oid, r in after.relations.items()}
    for oid, (schema, name, kind, rls, owner, privs) in before.relations.items():
        key = f"{schema}.{name}"
        now = after.relations.get(oid)
        if now is None:
            if kind in ("r", "p"):
                again = " and creates it again (its rows are gone)" if key in now_by_name else ""
                changes.append(Change(key, f"drops table {key}{again}", "loss", (name,)))
            continue
        new_key = f"{now[0]}.{now[1]}"
        if new_key != key and kind in ("r", "p"):
            what = ", a table with RLS," if rls else ""
            changes.append(Change(key, f"renames {key}{what} to {new_key} (what reads {key} now reads "
                                  "whatever takes its name)", "loss", (name, now[1])))
        if now[4] != owner:
            changes.append(Change(new_key, f"changes the owner of {new_key} from {owner} to {now[4]}", "loss",
                                  (now[1],)))
        gained = set(now[5]) - set(privs)
        if gained:
            changes.append(Change(new_key, f"grants {_privileges(gained)} on {new_key}", "widening", (now[1],)))
    for oid, (schema, name, kind, _rls, owner, _privs) in after.relations.items():
        if oid not in before.relations and owner != after.role:
            changes.append(Change(f"{schema}.{name}", f"creates {schema}.{name} owned by {owner}, not by the "
                                  f"migration role {after.role}", "loss", (name,)))
    for (oid, attnum), (column, type_) in before.columns.items():
        if oid not in after.relations:
            continue
        table = rel_name[oid]
        now = after.columns.get((oid, attnum))
        if now is None:
            changes.append(Change(f"{table}.{column}", f"drops column {column} of {table}", "loss",
                                  (column,)))
        elif now[1] != type_:
            widened = _widens(type_, now[1])
            changes.append(Change(f"{table}.{now[0]}", f"changes the type of {table}.{now[0]} from {type_} to "
                                  f"{now[1]}", "widened" if widened else "loss", (now[0],)))
    for oid, (schema, privs) in before.schemas.items():
        now = after.schemas.get(oid)
        if now is None:
            changes.append(Change(schema, f"drops schema {schema}", "loss", (schema,)))
        elif set(now[1]) - set(privs):
            changes.append(Change(now[0], f"grants {_privileges(set(now[1]) - set(privs))} on schema {now[0]}",
                                  "widening", (now[0],)))
    for oid, (signature, _definer, owner, privs) in before.functions.items():
        now = after.functions.get(oid)
        if now is None:
            continue
        short = (now[0].split("(")[0].split(".")[-1],)
        if set(now[3]) - set(privs):
            changes.append(Change(now[0], f"grants {_privileges(set(now[3]) - set(privs))} on function {now[0]}",
                                  "widening", short))
        if now[2] != owner:
            changes.append(Change(now[0], f"changes the owner of function {now[0]} from {owner} to {now[2]}",
                                  "loss", short))
    for oid, (signature, definer, owner, _privs) in after.functions.items():
        if oid not in before.functions and owner != after.role:
            changes.append(Change(signature, f"creates function {signature} owned by {owner}, not by the migration "
                                  f"role {after.role}", "loss", (signature.split("(")[0].split(".")[-1],)))
    changes += _restrictive_policies(before, after, rel_name)
    for (oid, name), enabled in before.triggers.items():
        if oid not in after.relations:
            continue
        table = rel_name[oid]
        now = after.triggers.get((oid, name))
        if now is None:
            changes.append(Change(table, f"drops trigger {name} on {table}", "loss", (name,)))
        elif enabled in ("O", "A") and now in ("D", "R"):
            how = "disables" if now == "D" else "limits to replication sessions"
            changes.append(Change(table, f"{how} trigger {name} on {table}", "loss", (name,)))
    for key, privs in after.defaults.items():
        gained = set(privs) - set(before.defaults.get(key, ()))
        if gained:
            role, schema, kind = key.split("/")
            changes.append(Change(f"default privileges of {role} in {schema}",
                                  f"grants {_privileges(gained)} by default on new objects ({kind}) of {role} in "
                                  f"{schema}", "widening", ("default",)))
    return changes


def _restrictive_policies(before: Snapshot, after: Snapshot, rel_name: dict) -> list[Change]:
    """A restrictive policy removed or loosened widens access, unless an identical one (same
    command, roles and expressions) stands after the file."""
    standing = {(oid, p[0], p[2], p[3], p[4]) for (oid, _n), p in after.policies.items() if not p[1]}
    changes = []
    for (oid, name), (command, permissive, roles, using, check) in before.policies.items():
        if permissive or oid not in after.relations or (oid, command, roles, using, check) in standing:
            continue
        table = rel_name[oid]
        what = "changes" if (oid, name) in after.policies else "drops"
        changes.append(Change(table, f"{what} the restrictive policy \"{name}\" on {table} (access widens)", "loss",
                              (name,)))
    return changes


def _privileges(items: set[str]) -> str:
    return ", ".join(sorted(items)).replace(":", " ")


_WIDER = {"smallint": 0, "integer": 1, "bigint": 2, "real": 0, "double precision": 1}
_LENGTH = re.compile(r"^(character varying|varchar|character|bit varying)\((\d+)\)$")
_NUMERIC = re.compile(r"^numeric\((\d+),(\d+)\)$")


def _widens(old: str, new: str) -> bool:
    """A type change that keeps every value (so not a loss): to text, a longer varchar, a
    larger integer or float, unconstrained numeric, more numeric precision at the same scale."""
    if new == "text" and (old.startswith(("character varying", "character(", "text"))):
        return True
    if new == "character varying" and old.startswith("character varying"):
        return True
    if old in _WIDER and new in _WIDER and _WIDER[new] >= _WIDER[old] and \
            ("int" in old) == ("int" in new):
        return True
    m_old, m_new = _LENGTH.match(old), _LENGTH.match(new)
    if m_old and m_new and m_old.group(1) == m_new.group(1) and int(m_new.group(2)) >= int(m_old.group(2)):
        return True
    n_old, n_new = _NUMERIC.match(old), _NUMERIC.match(new)
    if n_old and (new == "numeric" or (n_new and n_new.group(2) == n_old.group(2)
                                       and int(n_new.group(1)) >= int(n_old.group(1)))):
        return True
    return old in ("integer", "smallint") and new in ("numeric", "bigint")
