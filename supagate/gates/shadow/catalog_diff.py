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

from supagate.gates.catalog.nodes import walk
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


# ---------------------------------------------------------------- the statement log

# For the shadow's migration session (as a startup option, so a migration's RESET ALL
# returns to it): nested statements are logged too.
LOG_EVERYTHING = "-c pg_stat_statements.track=all"


def read_log(conn, schema: str) -> list[str]:
    """The statements the server executed since the last reset (nested ones too)."""
    rows = conn.execute(f'SELECT query FROM "{schema}".pg_stat_statements '
                        "WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())").fetchall()
    return [r[0] for r in rows]


def reset_log(conn, schema: str) -> tuple:
    """Empty the log; returns its (stats_reset, dealloc) right after, to compare with later."""
    conn.execute(f'SELECT "{schema}".pg_stat_statements_reset()')
    return tuple(conn.execute(f'SELECT stats_reset::text, dealloc FROM "{schema}".pg_stat_statements_info').fetchone())



def data_losses(queries: list[str], before: Snapshot, after: Snapshot) -> list[Change]:
    """Rows removed or rewritten by what the server ran (nested statements, data-modifying
    CTEs and new pg_cron jobs' commands too): TRUNCATE (any with CASCADE), DELETE or MERGE
    ... DELETE without a condition on the rows (no WHERE, or one that reads no column),
    `ALTER COLUMN ... TYPE ... USING`, on a table that existed before the file, or on one
    the file neither created nor found (a table renamed for the occasion)."""
    existed = {f"{r[0]}.{r[1]}" for r in before.relations.values() if r[2] in ("r", "p")}
    bare = {}
    for key in existed:
        bare.setdefault(key.split(".", 1)[1], key)
    parsed = []
    created: set[str] = set()
    jobs = [command for job, command in after.jobs.items() if before.jobs.get(job) != command]
    for query, scheduled in [(q, False) for q in queries] + [(c, True) for c in jobs]:
        if not re.search(r"\b(delete|truncate|merge|using|create)\b", query, re.IGNORECASE):
            continue
        try:
            nodes = pglast.parse_sql(query)
        except pglast.parser.ParseError:
            continue
        for node in walk(nodes):
            if type(node).__name__ in ("CreateStmt", "CreateTableAsStmt"):
                rel = node.relation if type(node).__name__ == "CreateStmt" else node.into.rel
                created.add(rel.relname)
        parsed.append((nodes, scheduled))
    found: dict[str, Change] = {}
    for nodes, scheduled in parsed:
        for node, verb, always in _row_losses(nodes):
            key = f"{node.schemaname}.{node.relname}" if node.schemaname else bare.get(node.relname)
            unknown = key not in existed and node.relname not in created  # renamed for the occasion
            if always or key in existed or unknown:
                key = key or node.relname
                what = f"{'schedules a pg_cron job that ' if scheduled else ''}{verb} {key}"
                found.setdefault(key, Change(key, what, "loss", (node.relname,)))
    return list(found.values())


def _row_losses(nodes):
    """(range var, what it does, whether it is a loss whatever the table) per statement."""
    for node in walk(nodes):
        kind = type(node).__name__
        if kind == "TruncateStmt":
            for rangevar in node.relations:
                yield rangevar, "truncates" + (" (CASCADE)" if node.behavior.name == "DROP_CASCADE" else ""), \
                    node.behavior.name == "DROP_CASCADE"
        elif kind == "DeleteStmt" and not _reads_a_column(node.whereClause):
            yield node.relation, "deletes every row of", False
        elif kind == "MergeStmt" and any(_merge_deletes(w) for w in node.mergeWhenClauses or ()):
            yield node.relation, "deletes rows of (MERGE ... DELETE)", False
        elif kind == "AlterTableStmt":
            for cmd in node.cmds or ():
                if cmd.subtype.name == "AT_AlterColumnType" and getattr(cmd.def_, "raw_default", None) is not None:
                    yield node.relation, f"rewrites every value of column {cmd.name} (TYPE ... USING) of", False


def _reads_a_column(where) -> bool:
    return where is not None and any(type(n).__name__ == "ColumnRef" for n in walk(where))


def _merge_deletes(clause) -> bool:
    return clause.commandType.name == "CMD_DELETE"



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
        self._expected: tuple | None = None  # the log's (stats_reset, dealloc) after our reset

    def __call__(self, conn, migration: Migration | None) -> None:
        after = snapshot(conn)
        logging = after.log_on and after.log_schema is not None
        if migration is not None:
            record = FileChanges(migration, diff(self._before, after))
            record.unobserved = self._unobserved(after)
            if record.unobserved is None:
                record.changes += data_losses(read_log(conn, after.log_schema), self._before, after)
            self.files.append(record)
        if logging:
            self._expected = reset_log(conn, after.log_schema)
        self._before = after

    def _unobserved(self, after: Snapshot) -> str | None:
        """Why the statement log cannot be trusted for the file that just ran, or None."""
        if after.log_schema is None:
            return "pg_stat_statements is not installed"
        if not (after.log_on and self._before.log_on):
            return "pg_stat_statements.track is not `all`, or track_utility is off"
        if after.log_state[0] != self._expected[0]:
            return "the statement log was reset while it ran"
        if after.log_state[1] != self._expected[1]:
            return "the statement log overflowed (entries were evicted) while it ran"
        return None

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
                if change.kind == "widened":
                    result.widened.add((where_file, change.object))
                    continue
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
    for node in walk(nodes):
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
