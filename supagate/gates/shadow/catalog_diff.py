"""What each migration really did, read from the shadow database's catalog.

Before the first file and after each one, the shadow records the catalog objects whose
loss or widening matters (relations by oid, table columns and their types, schemas,
functions, policies, triggers, RLS flags, privileges of the API roles, default
privileges) and the statements the server executed, nested ones included
(pg_stat_statements with `track = all`: what a DO block, EXECUTE, a called function or
procedure or a trigger ran). The difference between two snapshots is what the file did,
however its SQL was spelled:

- losses (destructive-unapproved unless approved with a down script): a table dropped
  (or dropped and created again: its oid changed, its rows are gone), a column dropped (a
  `drop type ... cascade` too), a column's type changed in a way that can lose data, a
  schema dropped, a table with RLS renamed, a restrictive policy or a trigger removed
  without a replacement, rows removed by TRUNCATE or DELETE without WHERE on a table that existed
  before the file;
- widenings: a privilege an API role did not have on an existing object, or a wider
  default privilege (privilege-widened, advisory: the end-state rules judge the exposure;
  RLS switched off is rls-missing/rls-disabled, read from the migrated catalog).

Objects created by the file itself are never a loss (a table dropped in the file that
created it). Each change is attributed to the file, and to the first statement that names
the object (else the first that runs code)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import pglast

from supagate.migrations.files import Migration

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
    "SELECT c.oid::int8, n.nspname, c.relname, c.relkind::text, c.relrowsecurity, "
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
    "p.prosecdef, " + _API_PRIVS.format(acl="coalesce(p.proacl, acldefault('f', p.proowner))")
    + " FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE " + _SCOPE + " AND "
    + _NOT_EXTENSION.format(catalog="pg_proc", oid="p.oid"),
    # policies
    "SELECT pol.polrelid::int8, pol.polname, pol.polcmd::text, pol.polpermissive FROM pg_policy pol",
    # triggers (not internal)
    "SELECT t.tgrelid::int8, t.tgname, t.tgenabled::text FROM pg_trigger t WHERE NOT t.tgisinternal",
    # default privileges
    "SELECT d.defaclrole::regrole::text || '/' || coalesce(n.nspname, '*') || '/' || d.defaclobjtype::text, "
    + _API_PRIVS.format(acl="d.defaclacl")
    + " FROM pg_default_acl d LEFT JOIN pg_namespace n ON n.oid = d.defaclnamespace",
    # is the statement log on, and where is it
    "SELECT current_setting('pg_stat_statements.track', true) = 'all' "
    "AND current_setting('pg_stat_statements.track_utility', true) = 'on', (SELECT n.nspname FROM pg_extension e "
    "JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'pg_stat_statements')",
    "COMMIT",
])


@dataclass(frozen=True)
class Snapshot:
    relations: dict[int, tuple]  # oid -> (schema, name, kind, rls, api privileges)
    columns: dict[tuple[int, int], tuple]  # (relation oid, attnum) -> (name, type)
    schemas: dict[int, tuple]  # oid -> (name, api privileges)
    functions: dict[int, tuple]  # oid -> (signature, definer, api privileges)
    policies: dict[tuple[int, str], tuple]  # (relation oid, name) -> (command, permissive)
    triggers: dict[tuple[int, str], str]  # (relation oid, name) -> enabled
    defaults: dict[str, tuple]  # role/schema/kind -> api privileges
    log_on: bool
    log_schema: str | None


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
    return Snapshot(
        relations={r[0]: (r[1], r[2], r[3], r[4], tuple(r[5])) for r in rel},
        columns={(r[0], r[1]): (r[2], r[3]) for r in col},
        schemas={r[0]: (r[1], tuple(r[2])) for r in sch},
        functions={r[0]: (r[1], r[2], tuple(r[3])) for r in fun},
        policies={(r[0], r[1]): (r[2], r[3]) for r in pol},
        triggers={(r[0], r[1]): r[2] for r in trg},
        defaults={r[0]: tuple(r[1]) for r in dfl},
        log_on=bool(log[0][0]), log_schema=log[0][1])


@dataclass(frozen=True)
class Change:
    object: str  # as static analysis names it: schema.table, schema.table.column, schema
    what: str  # "drops table public.x"
    kind: str  # "loss" or "widening"
    names: tuple[str, ...] = ()  # words a statement that did it would likely contain


def diff(before: Snapshot, after: Snapshot) -> list[Change]:
    changes: list[Change] = []
    rel_name = {**{oid: f"{r[0]}.{r[1]}" for oid, r in before.relations.items()},
                **{oid: f"{r[0]}.{r[1]}" for oid, r in after.relations.items()}}
    now_by_name = {f"{r[0]}.{r[1]}": oid for oid, r in after.relations.items()}
    for oid, (schema, name, kind, rls, privs) in before.relations.items():
        key = f"{schema}.{name}"
        now = after.relations.get(oid)
        if now is None:
            if kind in ("r", "p"):
                again = " and creates it again (its rows are gone)" if key in now_by_name else ""
                changes.append(Change(key, f"drops table {key}{again}", "loss", (name,)))
            continue
        new_key = f"{now[0]}.{now[1]}"
        if new_key != key and kind in ("r", "p") and rls:
            changes.append(Change(key, f"renames {key}, a table with RLS, to {new_key}", "loss", (name, now[1])))
        gained = set(now[4]) - set(privs)
        if gained:
            changes.append(Change(new_key, f"grants {_privileges(gained)} on {new_key}", "widening", (now[1],)))
    for (oid, attnum), (column, type_) in before.columns.items():
        if oid not in after.relations:
            continue
        table = rel_name[oid]
        now = after.columns.get((oid, attnum))
        if now is None:
            changes.append(Change(f"{table}.{column}", f"drops column {column} of {table}", "loss",
                                  (column,)))
        elif now[1] != type_ and not _widens(type_, now[1]):
            changes.append(Change(f"{table}.{now[0]}", f"changes the type of {table}.{now[0]} from {type_} to "
                                  f"{now[1]}", "loss", (now[0],)))
    for oid, (schema, privs) in before.schemas.items():
        now = after.schemas.get(oid)
        if now is None:
            changes.append(Change(schema, f"drops schema {schema}", "loss", (schema,)))
        elif set(now[1]) - set(privs):
            changes.append(Change(now[0], f"grants {_privileges(set(now[1]) - set(privs))} on schema {now[0]}",
                                  "widening", (now[0],)))
    for oid, (signature, _definer, privs) in before.functions.items():
        now = after.functions.get(oid)
        if now is not None and set(now[2]) - set(privs):
            changes.append(Change(now[0], f"grants {_privileges(set(now[2]) - set(privs))} on function {now[0]}",
                                  "widening", (now[0].split("(")[0].split(".")[-1],)))
    replaced = {(oid, command) for (oid, _name), (command, permissive) in after.policies.items()
                if (oid, _name) not in before.policies and not permissive}
    for (oid, name), (command, permissive) in before.policies.items():
        # A permissive policy removed only narrows who sees what (rls-no-policy and the probes
        # judge the rest); a restrictive one removed widens it, unless another took its place.
        if permissive or oid not in after.relations or (oid, name) in after.policies or (oid, command) in replaced:
            continue
        table = rel_name[oid]
        changes.append(Change(table, f"drops the restrictive policy \"{name}\" on {table} (access widens)", "loss",
                              (name,)))
    for (oid, name), enabled in before.triggers.items():
        if oid not in after.relations:
            continue
        table = rel_name[oid]
        now = after.triggers.get((oid, name))
        if now is None:
            changes.append(Change(table, f"drops trigger {name} on {table}", "loss", (name,)))
        elif enabled != "D" and now == "D":
            changes.append(Change(table, f"disables trigger {name} on {table}", "loss", (name,)))
    for key, privs in after.defaults.items():
        gained = set(privs) - set(before.defaults.get(key, ()))
        if gained:
            role, schema, kind = key.split("/")
            changes.append(Change(f"default privileges of {role} in {schema}",
                                  f"grants {_privileges(gained)} by default on new objects ({kind}) of {role} in "
                                  f"{schema}", "widening", ("default",)))
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


# ---------------------------------------------------------------- the statement log

def read_log(conn, schema: str) -> list[str]:
    """The statements the server executed since the last reset (nested ones too)."""
    rows = conn.execute(f'SELECT query FROM "{schema}".pg_stat_statements '
                        "WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())").fetchall()
    return [r[0] for r in rows]


def reset_log(conn, schema: str) -> None:
    conn.execute(f'SELECT "{schema}".pg_stat_statements_reset()')


def data_losses(queries: list[str], before: Snapshot) -> list[Change]:
    """TRUNCATE, and DELETE without WHERE (data-modifying CTEs too), on tables that existed
    before the file."""
    existed = {f"{r[0]}.{r[1]}" for r in before.relations.values() if r[2] in ("r", "p")}
    bare = {}
    for key in existed:
        bare.setdefault(key.split(".", 1)[1], key)
    found: dict[str, Change] = {}
    for query in queries:
        if not re.search(r"\b(delete|truncate)\b", query, re.IGNORECASE):
            continue
        try:
            nodes = pglast.parse_sql(query)
        except pglast.parser.ParseError:
            continue
        for node in _walk(nodes):
            kind = type(node).__name__
            targets = []
            if kind == "TruncateStmt":
                targets = [(r, "truncates") for r in node.relations]
            elif kind == "DeleteStmt" and node.whereClause is None and node.usingClause is None:
                targets = [(node.relation, "deletes every row of")]
            for rangevar, verb in targets:
                key = f"{rangevar.schemaname}.{rangevar.relname}" if rangevar.schemaname else bare.get(rangevar.relname)
                if key in existed and key not in found:
                    suffix = " (DELETE without WHERE)" if verb.startswith("deletes") else ""
                    found[key] = Change(key, f"{verb} {key}{suffix}", "loss", (rangevar.relname,))
    return list(found.values())


def _walk(value):
    """Every parse node under `value` (statements inside CTEs included)."""
    from pglast.ast import Node

    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, (list, tuple)):
            stack.extend(item)
        elif isinstance(item, Node):
            yield item
            for name in item:
                stack.append(getattr(item, name))


# ---------------------------------------------------------------- attribution

_RUNS_CODE = re.compile(r"^\s*(do|call|select|perform|execute|with|insert|update|delete)\b", re.IGNORECASE)


_ROUTINE = re.compile(r"create\s+(?:or\s+replace\s+)?(?:function|procedure)\s+([\w$.\"]+)", re.IGNORECASE)


def statement_line(migration: Migration, names: tuple[str, ...]) -> int:
    """The line of the top-level statement that most likely did it: the first that names
    one of `names` (when that one only defines a function or procedure, the first after it
    that calls it), else the first that runs code (DO, CALL, SELECT, DML: a function an
    earlier file defined), else the first statement."""
    statements = migration.statements
    for name in names:
        for index, statement in enumerate(statements):
            if _names(statement.text, name):
                routine = _ROUTINE.match(_strip_comments(statement.text))
                if routine:
                    called = routine.group(1).replace('"', "").split(".")[-1]
                    caller = next((s for s in statements[index + 1:] if _names(s.text, called)
                                   and not _ROUTINE.match(_strip_comments(s.text))), None)
                    if caller is not None:
                        return caller.line
                return statement.line
    for statement in statements:
        if _RUNS_CODE.match(_strip_comments(statement.text)):
            return statement.line
    return statements[0].line if statements else 1


def _names(text: str, name: str) -> bool:
    return re.search(r"(?<![\w$])" + re.escape(name) + r"(?![\w$])", text, re.IGNORECASE) is not None


def _strip_comments(text: str) -> str:
    return re.sub(r"^(\s*(--[^\n]*\n|/\*.*?\*/))*", "", text, flags=re.DOTALL)


@dataclass
class FileChanges:
    migration: Migration
    changes: list[Change] = field(default_factory=list)
    unobserved: str | None = None  # why this file's data changes could not be seen


class CatalogWatch:
    """The runner's observer in the shadow: a snapshot before the first file and after each,
    the statement log read and reset with each."""

    def __init__(self) -> None:
        self.files: list[FileChanges] = []
        self._before: Snapshot | None = None

    def __call__(self, conn, migration: Migration | None) -> None:
        after = snapshot(conn)
        logging = after.log_on and after.log_schema is not None
        if migration is not None:
            record = FileChanges(migration, diff(self._before, after))
            if logging and self._before.log_on:
                record.changes += data_losses(read_log(conn, after.log_schema), self._before)
            else:
                record.unobserved = ("pg_stat_statements is not installed" if after.log_schema is None else
                                     "pg_stat_statements.track is not `all` or track_utility is off")
            self.files.append(record)
        if logging:
            reset_log(conn, after.log_schema)
        self._before = after

    def findings(self, result, gaps) -> list:
        """Findings per file; fills result.losses and result.observed."""
        from supagate.gates.catalog.model import Where
        from supagate.gates.markers import GateInputError, read_markers
        from supagate.gates.rules import destructive_unapproved, not_analysed, privilege_widened

        gap_files = {g.file for g in gaps}
        found = []
        for record in self.files:
            migration = record.migration
            where_file = migration.path or migration.filename
            try:
                approved = read_markers(migration.sql, where_file).approve is not None
            except GateInputError:
                approved = False  # static analysis reports the bad marker
            for change in record.changes:
                where = Where(where_file, statement_line(migration, change.names), migration.version)
                if change.kind == "loss":
                    result.losses.add((where_file, change.object))
                    finding = destructive_unapproved.finding(change.object, change.what, where, migration.filename,
                                                             approved, migration.down_sql is not None, "shadow")
                else:
                    finding = privilege_widened.finding(change.object, change.what, where)
                if finding is not None:
                    found.append(finding)
            if record.unobserved:
                found.append(not_analysed.unobserved(where_file, record.unobserved))
            elif where_file not in gap_files:
                result.observed.add(where_file)
        return found


# Functions a skipped statement may call without running the app's own code.
def runs_code(conn, text: str) -> bool:
    """Whether a statement runs code the migrations wrote (a DO block, CALL, or a call of a
    function outside pg_catalog and Supabase's own schemas), so skipping it leaves its
    effects unanalysed."""
    from supagate.gates.shadow.gaps import SUPABASE_SCHEMAS

    try:
        nodes = pglast.parse_sql(text)
    except pglast.parser.ParseError:
        return True
    unqualified = set()
    for node in _walk(nodes):
        kind = type(node).__name__
        if kind in ("DoStmt", "CallStmt"):
            return True
        if kind == "FuncCall":
            names = [n.sval for n in node.funcname]
            if len(names) > 1:
                if names[0] not in SUPABASE_SCHEMAS and names[0] != "pg_catalog":
                    return True
            else:
                unqualified.add(names[0])
    for name in unqualified:
        builtin = conn.execute("SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_proc WHERE proname = %s "
                               "AND pronamespace = 'pg_catalog'::regnamespace)", (name,)).fetchone()[0]
        if not builtin:
            return True
    return False
