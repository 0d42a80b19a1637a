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

from supagate.gates.shadow.probes import PROBE_SCHEMA
from supagate.gates.shadow.quiet_files import SCHEMA as WATCH_SCHEMA


API_ROLES = ("anon", "authenticated", "public")
# The shadow's own helpers: never the migrations' objects, never their losses.
OWN_SCHEMAS = (PROBE_SCHEMA, WATCH_SCHEMA)
_SKIP_SCHEMAS = ("pg_catalog", "information_schema", "pg_toast", "supabase_migrations", *OWN_SCHEMAS)
_SCOPE = ("n.nspname NOT IN ({}) AND n.nspname NOT LIKE 'pg\\_temp\\_%' AND n.nspname NOT LIKE 'pg\\_toast\\_temp\\_%'"
          .format(", ".join(f"'{s}'" for s in _SKIP_SCHEMAS)))
_NOT_EXTENSION = ("NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = '{catalog}'::regclass "
                  "AND d.objid = {oid} AND d.deptype = 'e')")

# Supabase's own schemas: their functions are the platform's, not the migrations'.
_PLATFORM = ("pg_catalog", "information_schema", "extensions", "auth", "storage", "graphql", "graphql_public",
             "realtime", "vault", "pgsodium", "pgsodium_masks", "net", "cron", "supabase_functions", "pgbouncer",
             "supabase_migrations", "pgmq", "_realtime", *OWN_SCHEMAS)

# Raw catalog values (oids, ACL text, type ids, expression trees): naming them costs more
# than the whole snapshot, so that is done only for what changed (see `diff`). Each entry:
# (columns, FROM ... WHERE scope, the row version to compare, how many leading columns key a row).
_CATALOGS = {
    "relations": ("c.oid::int8, n.nspname, c.relname, c.relkind::text, c.relrowsecurity, c.relowner::int8, "
                  "c.relacl::text", "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                  "WHERE c.relkind IN ('r','p','v','m','f') AND " + _SCOPE, "c.xmin", 1),
    "columns": ("a.attrelid::int8, a.attnum, a.attname, a.atttypid::int8, a.atttypmod",
                "FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON "
                "n.oid = c.relnamespace WHERE c.relkind IN ('r','p') AND a.attnum > 0 AND NOT a.attisdropped AND "
                + _SCOPE, "a.xmin", 2),
    "schemas": ("n.oid::int8, n.nspname, n.nspacl::text, n.nspowner::int8", "FROM pg_namespace n WHERE " + _SCOPE,
                "n.xmin", 1),
    "functions": ("p.oid::int8, n.nspname || '.' || p.proname, p.proowner::int8, p.proacl::text, md5(p.prosrc)",
                  "FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname NOT IN ({}) AND "
                  "n.nspname NOT LIKE 'pg\\_t%' AND ".format(", ".join(f"'{s}'" for s in _PLATFORM))
                  + _NOT_EXTENSION.format(catalog="pg_proc", oid="p.oid"), "p.xmin", 1),
    # restrictive policies only: removing a permissive one narrows access
    "policies": ("pol.polrelid::int8, pol.polname, pol.polcmd::text, pol.polroles::text, pol.polqual::text, "
                 "pol.polwithcheck::text", "FROM pg_policy pol WHERE NOT pol.polpermissive", "pol.xmin", 2),
    "triggers": ("t.tgrelid::int8, t.tgname, t.tgenabled::text", "FROM pg_trigger t WHERE NOT t.tgisinternal",
                 "t.xmin", 2),
    "defaults": ("d.defaclrole::int8, coalesce(n.nspname, '*'), d.defaclobjtype::text, d.defaclacl::text",
                 "FROM pg_default_acl d LEFT JOIN pg_namespace n ON n.oid = d.defaclnamespace WHERE true", "d.xmin", 3),
}
_STATE = ("SELECT pg_snapshot_xmax(pg_current_snapshot())::text::int8, "
          "current_setting('pg_stat_statements.track', true) = 'all' "
          "AND current_setting('pg_stat_statements.track_utility', true) = 'on', (SELECT n.nspname FROM pg_extension e "
          "JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'pg_stat_statements'), session_user::text, "
          "to_regclass('cron.job') IS NOT NULL")


@dataclass(frozen=True)
class Snapshot:
    relations: dict[int, tuple]  # oid -> (schema, name, kind, rls, owner oid, acl text)
    columns: dict[tuple, tuple]  # (relation oid, attnum) -> (name, type oid, type modifier)
    schemas: dict[int, tuple]  # oid -> (name, acl text, owner oid)
    functions: dict[int, tuple]  # oid -> (schema.name, owner oid, acl text, md5 of the body)
    policies: dict[tuple, tuple]  # restrictive: (relation oid, name) -> (command, roles, using, check)
    triggers: dict[tuple, tuple]  # (relation oid, name) -> (enabled,)
    defaults: dict[tuple, tuple]  # (role oid, schema, kind) -> (acl text,)
    roles: dict[int, str]
    since: int  # the first transaction id this snapshot has not seen
    log_on: bool
    log_schema: str | None
    role: str  # the migration role: what every object a migration creates is owned by
    jobs: dict[int, str]  # pg_cron job id -> command
    log_state: tuple | None = None  # (stats_reset, dealloc) of the statement log


_LOCATION = re.compile(r" :location -?\d+")


def snapshot(conn, previous: Snapshot | None = None) -> Snapshot:
    """The catalog now. Given the previous snapshot, only rows written since (a newer
    xmin) are read, and the keys of a catalog only when a row left it: one round trip and
    a few rows per file, whatever the size of the schema."""
    incremental = previous is not None
    queries = ["BEGIN ISOLATION LEVEL REPEATABLE READ", "SET LOCAL search_path = pg_catalog", _STATE,
               "SELECT oid::int8, rolname FROM pg_roles"]
    for columns, source, version, _ in _CATALOGS.values():
        if incremental:
            queries += [f"SELECT {columns} {source} AND {version}::text::int8 >= {int(previous.since)}",
                        f"SELECT count(*) {source}"]
        else:
            queries.append(f"SELECT {columns} {source}")
    queries.append("COMMIT")
    rows_of = results(conn, ";\n".join(queries))
    (since, log_on, log_schema, role, has_cron), = rows_of[0]
    found: dict[str, dict] = {}
    refetch = []
    for index, (name, (_, source, _, width)) in enumerate(_CATALOGS.items()):
        if not incremental:
            found[name] = {_key(r, width): _value(name, r[width:]) for r in rows_of[2 + index]}
            continue
        rows, (count,) = rows_of[2 + 2 * index], rows_of[3 + 2 * index][0]
        current = dict(getattr(previous, name))
        current.update({_key(r, width): _value(name, r[width:]) for r in rows})
        found[name] = current
        if len(current) != count:  # something left the catalog (or its scope): which keys remain
            refetch.append((name, source, width))
    # A renamed or re-granted schema changes the names and scope of what is in it.
    if incremental and any(k in previous.schemas and previous.schemas[k] != v for k, v in found["schemas"].items()):
        refetch = [(n, s, w) for n, (_, s, _, w) in _CATALOGS.items()]
        fresh = results(conn, ";\n".join(f"SELECT {_CATALOGS[n][0]} {s}" for n, s, w in refetch))
        for (name, _, width), rows in zip(refetch, fresh):
            found[name] = {_key(r, width): _value(name, r[width:]) for r in rows}
    elif refetch:
        keys = results(conn, ";\n".join(
            f"SELECT {', '.join(_CATALOGS[n][0].split(', ')[:w])} {s}" for n, s, w in refetch))
        for (name, _, width), rows in zip(refetch, keys):
            remaining = {_key(r, width) for r in rows}
            found[name] = {k: v for k, v in found[name].items() if k in remaining}
    jobs = dict(conn.execute("SELECT jobid::int8, command FROM cron.job").fetchall()) if has_cron else {}
    state = None
    if log_schema is not None:
        state = tuple(conn.execute(f'SELECT stats_reset::text, dealloc FROM "{log_schema}".pg_stat_statements_info'
                                   ).fetchone())
    return Snapshot(**found, roles=dict(rows_of[1]), since=since, log_on=bool(log_on), log_schema=log_schema,
                    role=role, jobs=jobs, log_state=state)


# Which catalog (and oid column) holds what each entry of _CATALOGS reads, for `merge`.
_BY_OID = {"relations": ("pg_class", "c.oid"), "columns": ("pg_class", "a.attrelid"),
           "schemas": ("pg_namespace", "n.oid"), "functions": ("pg_proc", "p.oid"),
           "policies": ("pg_policy", "pol.oid"), "triggers": ("pg_trigger", "t.oid")}


def merge(conn, previous: Snapshot, created: dict[str, list[int]]) -> Snapshot:
    """`previous` with the objects a file created (oids by catalog, from the event log)
    read in: the fast path for files that only add (quiet_files.py)."""
    from dataclasses import replace

    wanted = [(name, oid_column, sorted(set(created[catalog])), _CATALOGS[name])
              for name, (catalog, oid_column) in _BY_OID.items() if created.get(catalog)]
    if not wanted:
        return previous
    queries = [f"SELECT {columns} {source} AND {oid_column} = ANY('{{{','.join(map(str, oids))}}}'::oid[])"
               for name, oid_column, oids, (columns, source, _, _) in wanted]
    updated = {}
    for (name, _, oids, (_, _, _, width)), rows in zip(wanted, results(conn, ";\n".join(queries))):
        current = dict(getattr(previous, name))
        if name == "columns":  # the table's columns as they are now (an ALTER TABLE ADD COLUMN)
            current = {k: v for k, v in current.items() if k[0] not in oids}
        current.update({_key(r, width): _value(name, r[width:]) for r in rows})
        updated[name] = current
    return replace(previous, **updated)


def results(conn, sql: str) -> list[list[tuple]]:
    cur = conn.cursor()
    cur.execute(sql)
    results = []
    while True:
        if cur.description is not None:
            results.append(cur.fetchall())
        if not cur.nextset():
            break
    return results


def _key(row, width: int):
    return row[0] if width == 1 else tuple(row[:width])


def _value(name: str, value: tuple) -> tuple:
    if name == "policies":  # where the expression was written does not matter
        return tuple(_LOCATION.sub("", v) if isinstance(v, str) else v for v in value)
    return tuple(value)


# aclitem privilege letters (PostgreSQL's acl.h)
_PRIVILEGES = {"r": "SELECT", "a": "INSERT", "w": "UPDATE", "d": "DELETE", "D": "TRUNCATE", "x": "REFERENCES",
               "t": "TRIGGER", "X": "EXECUTE", "U": "USAGE", "C": "CREATE", "c": "CONNECT", "T": "TEMPORARY",
               "m": "MAINTAIN"}


def api_privileges(acl: str | None, default_public: str = "") -> set[str]:
    """`role:PRIVILEGE` items for anon, authenticated and PUBLIC in an ACL's text; a NULL
    ACL is the default (PUBLIC gets `default_public`, e.g. EXECUTE on functions)."""
    if acl is None:
        return {f"public:{p}" for p in default_public.split(",") if p}
    found = set()
    for item in acl.strip("{}").split(","):
        grantee, _, rest = item.strip('"').partition("=")
        grantee = grantee.strip('"') or "public"
        if grantee in API_ROLES:
            for letter in rest.split("/")[0].replace("*", ""):
                found.add(f"{grantee}:{_PRIVILEGES.get(letter, letter)}")
    return found


@dataclass(frozen=True)
class Change:
    object: str  # as static analysis names it: schema.table, schema.table.column, schema
    what: str  # "drops table public.x"
    kind: str  # "loss", "widening" (a privilege), or "widened" (a type that keeps every value: no finding)
    names: tuple[str, ...] = ()  # words a statement that did it would likely contain


def diff(before: Snapshot, after: Snapshot, type_names=None) -> list[Change]:
    """What changed between two snapshots. `type_names((oid, typmod), ...)` names column
    types (format_type), asked only for the columns whose type changed."""
    changes: list[Change] = []
    role = lambda oid: after.roles.get(oid) or before.roles.get(oid) or str(oid)  # noqa: E731
    rel_name = {**{oid: f"{r[0]}.{r[1]}" for oid, r in before.relations.items()},
                **{oid: f"{r[0]}.{r[1]}" for oid, r in after.relations.items()}}
    now_by_name = {f"{r[0]}.{r[1]}": oid for oid, r in after.relations.items()}
    for oid, (schema, name, kind, rls, owner, acl) in before.relations.items():
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
            changes.append(Change(new_key, f"changes the owner of {new_key} from {role(owner)} to {role(now[4])}",
                                  "loss", (now[1],)))
        if now[5] != acl:
            gained = api_privileges(now[5]) - api_privileges(acl)
            if gained:
                changes.append(Change(new_key, f"grants {_privileges(gained)} on {new_key}", "widening", (now[1],)))
    for oid, (schema, name, _kind, _rls, owner, _acl) in after.relations.items():
        if oid not in before.relations and role(owner) != after.role:
            changes.append(Change(f"{schema}.{name}", f"creates {schema}.{name} owned by {role(owner)}, not by the "
                                  f"migration role {after.role}", "loss", (name,)))
    retyped = []
    for (oid, attnum), (column, typid, typmod) in before.columns.items():
        if oid not in after.relations:
            continue
        now = after.columns.get((oid, attnum))
        if now is None:
            changes.append(Change(f"{rel_name[oid]}.{column}", f"drops column {column} of {rel_name[oid]}", "loss",
                                  (column,)))
        elif now[1:] != (typid, typmod):
            retyped.append((rel_name[oid], now[0], (typid, typmod), now[1:]))
    names = type_names(*[t for r in retyped for t in r[2:]]) if retyped else []
    for index, (table, column, _old, _new) in enumerate(retyped):
        old, new = names[2 * index], names[2 * index + 1]
        changes.append(Change(f"{table}.{column}", f"changes the type of {table}.{column} from {old} to {new}",
                              "widened" if _widens(old, new) else "loss", (column,)))
    for oid, (schema, acl, owner) in before.schemas.items():
        now = after.schemas.get(oid)
        if now is None:
            changes.append(Change(schema, f"drops schema {schema}", "loss", (schema,)))
            continue
        if now[2] != owner:
            changes.append(Change(now[0], f"changes the owner of schema {now[0]} from {role(owner)} to "
                                  f"{role(now[2])} (an owner may drop everything in it)", "loss", (now[0],)))
        elif now[1] != acl and api_privileges(now[1]) - api_privileges(acl):
            gained = api_privileges(now[1]) - api_privileges(acl)
            changes.append(Change(now[0], f"grants {_privileges(gained)} on schema {now[0]}", "widening", (now[0],)))
    for oid, (schema, _acl, owner) in after.schemas.items():
        if oid not in before.schemas and role(owner) != after.role:
            changes.append(Change(schema, f"creates schema {schema} owned by {role(owner)}, not by the migration "
                                  f"role {after.role}", "loss", (schema,)))
    guards = _policy_functions(after)
    for oid, (name, owner, acl, body) in before.functions.items():
        now = after.functions.get(oid)
        if now is None:
            continue
        if now[3] != body and oid in guards:
            changes.append(Change(name, f"changes the body of {name}, which the restrictive policy {guards[oid]} "
                                  "calls (access may widen)", "loss", (name.split(".")[-1],)))
        short = (name.split(".")[-1],)
        gained = api_privileges(now[2], "EXECUTE") - api_privileges(acl, "EXECUTE") if now[2] != acl else set()
        if gained:
            changes.append(Change(name, f"grants {_privileges(gained)} on function {name}", "widening", short))
        if now[1] != owner:
            changes.append(Change(name, f"changes the owner of function {name} from {role(owner)} to "
                                  f"{role(now[1])}", "loss", short))
    for oid, (name, owner, _acl, _body) in after.functions.items():
        if oid not in before.functions and role(owner) != after.role:
            changes.append(Change(name, f"creates function {name} owned by {role(owner)}, not by the migration "
                                  f"role {after.role}", "loss", (name.split(".")[-1],)))
    changes += _restrictive_policies(before, after, rel_name)
    for (oid, name), (enabled,) in before.triggers.items():
        if oid not in after.relations:
            continue
        table = rel_name[oid]
        now = after.triggers.get((oid, name), (None,))[0]
        if now is None:
            changes.append(Change(table, f"drops trigger {name} on {table}", "loss", (name,)))
        elif enabled in ("O", "A") and now in ("D", "R"):
            how = "disables" if now == "D" else "limits to replication sessions"
            changes.append(Change(table, f"{how} trigger {name} on {table}", "loss", (name,)))
    for key, (acl,) in after.defaults.items():
        gained = api_privileges(acl) - api_privileges(before.defaults.get(key, ("{}",))[0])
        if gained:
            owner, schema, kind = key
            changes.append(Change(f"default privileges of {role(int(owner))} in {schema}",
                                  f"grants {_privileges(gained)} by default on new objects ({kind}) of "
                                  f"{role(int(owner))} in {schema}", "widening", ("default",)))
    return changes


_FUNCID = re.compile(r":funcid (\d+)")


def _policy_functions(snap: Snapshot) -> dict[int, str]:
    """function oid -> a restrictive policy whose expression calls it."""
    found = {}
    for (oid, name), (_cmd, _roles, using, check) in snap.policies.items():
        for tree in (using, check):
            for funcid in _FUNCID.findall(tree or ""):
                found.setdefault(int(funcid), f'"{name}"')
    return found


def _restrictive_policies(before: Snapshot, after: Snapshot, rel_name: dict) -> list[Change]:
    """A restrictive policy removed or loosened widens access, unless an identical one (same
    command, roles and expressions) stands after the file."""
    standing = {(oid, *p) for (oid, _n), p in after.policies.items()}
    changes = []
    for (oid, name), policy in before.policies.items():
        if oid not in after.relations or (oid, *policy) in standing:
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
