"""Files that only add: the shadow's fast path.

Most migrations only create (tables, indexes on columns, policies, functions, triggers,
views, types, comments, RLS switched on). Such a file can lose nothing and runs no code,
so the shadow skips its full catalog snapshot and statement log: it adds the new objects
to the snapshot by oid instead. Two checks decide, and both must agree:
- what the file says: every statement is of an additive kind (`additive`), parsed with
  pglast (no DO, no DML, no GRANT, no index on an expression, no default that runs code);
- what happened: an event trigger (ddl_command_end and sql_drop, shadow only, enabled
  ALWAYS) logged only CREATE/COMMENT/ALTER TABLE commands, no drop, all by the migration
  role, and no other event trigger exists (one could run code on every CREATE).
A file that passes the first but not the second gets the full observation, as every other
file does."""

from __future__ import annotations

from functools import lru_cache

import pglast

from supagate.migrations.files import Migration

SCHEMA = "supagate_watch"
INSTALL = f"""
CREATE SCHEMA IF NOT EXISTS {SCHEMA};
CREATE TABLE IF NOT EXISTS {SCHEMA}.ddl (event text, tag text, class text, objid bigint, by_user text);
CREATE OR REPLACE FUNCTION {SCHEMA}.on_ddl() RETURNS event_trigger LANGUAGE plpgsql SET search_path = '' AS $$
BEGIN
  IF tg_event = 'sql_drop' THEN
    INSERT INTO {SCHEMA}.ddl SELECT 'drop', tg_tag, d.classid::regclass::text, d.objid, current_user::text
      FROM pg_catalog.pg_event_trigger_dropped_objects() d;
  ELSE
    INSERT INTO {SCHEMA}.ddl SELECT 'end', c.command_tag, c.classid::regclass::text, c.objid, current_user::text
      FROM pg_catalog.pg_event_trigger_ddl_commands() c;
  END IF;
END $$;
DROP EVENT TRIGGER IF EXISTS {SCHEMA}_end;
DROP EVENT TRIGGER IF EXISTS {SCHEMA}_drop;
CREATE EVENT TRIGGER {SCHEMA}_end ON ddl_command_end EXECUTE FUNCTION {SCHEMA}.on_ddl();
CREATE EVENT TRIGGER {SCHEMA}_drop ON sql_drop EXECUTE FUNCTION {SCHEMA}.on_ddl();
ALTER EVENT TRIGGER {SCHEMA}_end ENABLE ALWAYS;
ALTER EVENT TRIGGER {SCHEMA}_drop ENABLE ALWAYS;
"""
REMOVE = f"DROP EVENT TRIGGER IF EXISTS {SCHEMA}_end; DROP EVENT TRIGGER IF EXISTS {SCHEMA}_drop; " \
         f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE"
READ = f"""SELECT event, tag, class, objid, by_user FROM {SCHEMA}.ddl;
DELETE FROM {SCHEMA}.ddl;
SELECT count(*) FILTER (WHERE evtname LIKE '{SCHEMA}%' AND evtenabled = 'A'),
       count(*) FILTER (WHERE evtname NOT LIKE '{SCHEMA}%') FROM pg_catalog.pg_event_trigger"""
TAGS = ("CREATE ", "COMMENT", "ALTER TABLE", "ALTER SEQUENCE")  # an identity column alters its sequence

_ADDITIVE = {"CreateStmt", "CreatePolicyStmt", "CreateFunctionStmt", "CommentStmt", "CreateTrigStmt",
             "CreateSchemaStmt", "ViewStmt", "CreateEnumStmt", "CompositeTypeStmt", "CreateDomainStmt",
             "CreateSeqStmt", "CreateExtensionStmt", "VariableSetStmt", "TransactionStmt"}
_ADDITIVE_ALTER = {"AT_EnableRowSecurity", "AT_ForceRowSecurity", "AT_AddColumn", "AT_AddIndex",
                   "AT_AddConstraint"}


@lru_cache(maxsize=4096)
def _additive_text(text: str) -> bool:
    try:
        nodes = pglast.parse_sql(text)
    except pglast.parser.ParseError:
        return False
    return all(_additive(raw.stmt) for raw in nodes)


def additive(migration: Migration) -> bool:
    """Every statement of the file only adds, and none runs code."""
    return all(_additive_text(s.text) for s in migration.statements)


def _additive(node) -> bool:
    kind = type(node).__name__
    if kind == "CreateStmt":  # a new table has no rows: its defaults and checks evaluate nothing yet
        return node.partbound is None
    if kind == "IndexStmt":  # columns only: an expression or a predicate calls functions on every row
        return node.whereClause is None and all(p.expr is None for p in node.indexParams)
    if kind == "AlterTableStmt":
        return all(cmd.subtype.name in _ADDITIVE_ALTER and _plain_alter(cmd) for cmd in node.cmds or ())
    if kind == "CreateSchemaStmt":  # AUTHORIZATION: someone else's schema
        return not node.schemaElts and node.authrole is None
    if kind == "CreateTrigStmt":  # OR REPLACE may rebind a trigger that was there
        return not node.replace
    if kind == "CreateDomainStmt":  # a CHECK runs on every row a column of it is added to
        return not node.constraints
    return kind in _ADDITIVE


def _plain_column(element) -> bool:
    """A column or constraint whose creation evaluates nothing of the app's on existing rows."""
    if type(element).__name__ == "ColumnDef":
        return all(_plain_constraint(c) for c in element.constraints or ())
    return type(element).__name__ == "Constraint" and _plain_constraint(element)


def _plain_constraint(constraint) -> bool:
    kind = constraint.contype.name
    if kind == "CONSTR_DEFAULT":  # a DEFAULT is evaluated for existing rows when a column is added
        return type(constraint.raw_expr).__name__ == "A_Const"
    return kind not in ("CONSTR_CHECK", "CONSTR_GENERATED", "CONSTR_EXCLUSION")


def _plain_alter(cmd) -> bool:
    if cmd.subtype.name == "AT_AddColumn":  # a type of the app's own may be a domain with a CHECK
        names = [n.sval for n in cmd.def_.typeName.names]
        return _plain_column(cmd.def_) and (len(names) == 1 or names[0] == "pg_catalog")
    if cmd.subtype.name == "AT_AddConstraint":
        return _plain_constraint(cmd.def_)
    if cmd.subtype.name == "AT_AddIndex":
        return False
    return True


def confirmed(rows, watchers: int, others: int, role: str, known) -> dict[str, list[int]] | None:
    """The oids of what the file created, by catalog, when the event log confirms it only
    added (as the migration role, nothing replaced: `known(catalog, oid)` says whether an
    object was there before); else None."""
    if watchers != 2 or others:
        return None
    created: dict[str, list[int]] = {}
    for event, tag, catalog, objid, by_user in rows:
        if event != "end" or not tag.startswith(TAGS) or by_user != role:
            return None
        if tag.startswith("CREATE") and known(catalog, int(objid)):  # CREATE OR REPLACE of what was there
            return None
        created.setdefault(catalog, []).append(int(objid))
    return created
