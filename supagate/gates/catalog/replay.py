"""Static analysis of the migration set with pglast: the files are replayed in order
against the catalog model (gates/catalog/model.py). Statement rules fire where the
statement is (a DROP without approval); end-state rules (gates/rules/*) run over the model
when the set ends, at the statement that left the object that way.

Dynamic SQL (`DO ... EXECUTE`) cannot be seen here; the shadow database catches it.
"""

from __future__ import annotations

from dataclasses import dataclass

import pglast

from supagate.findings import Finding
from supagate.gates.catalog.code_bodies import CodeScan
from supagate.gates.catalog.model import API_ROLES, DEFAULT_EXPOSED_SCHEMAS, Catalog, Function, Policy, Relation, Where
from supagate.gates.catalog.nodes import (apply_grant, deparse, enum, function_body, function_key, leading_lines,
                                          option_true, reads_a_column, reads_auth_users, references_auth_users,
                                          role_names, sets_search_path)
from supagate.gates.markers import Markers, read_markers
from supagate.gates.registry import RULES
from supagate.gates.rules import destructive_unapproved, index_not_concurrent
from supagate.gates.rules.destructive_unapproved import CODE_MARK
from supagate.migrations.files import Migration


@dataclass
class Analysis:
    findings: list[Finding]
    markers: dict[str, Markers]
    catalog: Catalog
    statements: int


def analyse(migrations: list[Migration], exposed_schemas=DEFAULT_EXPOSED_SCHEMAS) -> Analysis:
    catalog = Catalog(exposed=tuple(exposed_schemas))
    findings: list[Finding] = []
    markers: dict[str, Markers] = {}
    count = 0
    for migration in migrations:
        where_file = migration.path or migration.filename
        file_markers = read_markers(migration.sql, where_file)
        markers[where_file] = file_markers
        walker = _FileWalker(catalog, migration, where_file, file_markers, findings)
        for statement in migration.statements:
            count += 1
            walker.statement(statement)
    for rule in RULES.values():
        if rule.end_state is not None:
            findings.extend(rule.end_state(catalog))
    return Analysis(findings=findings, markers=markers, catalog=catalog, statements=count)


# ---------------------------------------------------------------- per statement

# The triggers that keep safety flags on (supagate/ops/sql/ops.sql): removing one is destructive.
SAFETY_GUARDS = ("flags_safety_guard", "flags_salt_immutable")


class _FileWalker:
    def __init__(self, catalog: Catalog, migration: Migration, file: str, markers: Markers,
                 findings: list[Finding]):
        self.catalog, self.migration, self.file = catalog, migration, file
        self.markers, self.findings = markers, findings
        self.created_here: set[str] = set()
        self._scan = CodeScan(catalog, self.created_here)

    def statement(self, statement) -> None:
        try:
            nodes = pglast.parse_sql(statement.text)
        except pglast.parser.ParseError:
            return  # the shadow database reports it with the server's own message
        for raw in nodes:
            node = raw.stmt
            self.where = Where(self.file, statement.line + leading_lines(statement.text), self.migration.version)
            handler = getattr(self, "_" + type(node).__name__, None)
            if handler is not None:
                handler(node)
            self._calls(node)

    # -- relations
    def _new_relation(self, rangevar, kind: str) -> Relation:
        key = self.catalog.key(rangevar)
        schema, name = key.split(".", 1)
        relation = Relation(schema, name, kind, self.where)
        for role, privs in self.catalog.default_grants.get(schema, {}).items():
            relation.grants[role] = set(privs)
        self.catalog.relations[key] = relation
        self.created_here.add(key)
        return relation

    def _CreateForeignTableStmt(self, node) -> None:
        relation = self._new_relation(node.base.relation, "foreign")
        for element in node.base.tableElts or ():
            if type(element).__name__ == "ColumnDef":
                relation.columns[element.colname] = False

    def _InsertStmt(self, node) -> None:
        """Buckets created by migrations, and whether they are public."""
        if self.catalog.key(node.relation) != "storage.buckets" or node.selectStmt is None:
            return
        columns = [c.name for c in node.cols or ()]
        for values in getattr(node.selectStmt, "valuesLists", None) or ():
            row = dict(zip(columns, (deparse(v) for v in values)))
            bucket = (row.get("id") or row.get("name") or "").strip("'")
            if bucket:
                self.catalog.buckets[bucket] = (row.get("public") or "false").strip("'").lower() in ("true", "t")

    def _CreateStmt(self, node) -> None:
        if node.relation.relpersistence == "t":
            return
        if node.if_not_exists and self.catalog.get(node.relation) is not None:
            return
        relation = self._new_relation(node.relation, "table")
        for element in node.tableElts or ():
            name = type(element).__name__
            if name == "ColumnDef":
                relation.columns[element.colname] = any(
                    references_auth_users(c) for c in element.constraints or ())
            elif name == "Constraint" and references_auth_users(element):
                for attr in element.fk_attrs or ():
                    relation.columns[attr.sval] = True

    def _CreateTableAsStmt(self, node) -> None:
        kind = "matview" if enum(node.objtype) == "OBJECT_MATVIEW" else "table"
        relation = self._new_relation(node.into.rel, kind)
        relation.reads_auth_users = reads_auth_users(node.query)
        for column in node.into.colNames or ():
            relation.columns[column.sval] = False

    def _ViewStmt(self, node) -> None:
        relation = self._new_relation(node.view, "view")
        relation.security_invoker = option_true(node.options, "security_invoker")
        relation.reads_auth_users = reads_auth_users(node.query)

    def _AlterTableStmt(self, node) -> None:
        relation = self.catalog.get(node.relation)
        target = self.catalog.key(node.relation)
        for cmd in node.cmds or ():
            subtype = enum(cmd.subtype)
            if target == "ops.flags" and subtype in ("AT_DisableTrig", "AT_DisableTrigAll", "AT_DisableTrigUser") \
                    and (cmd.name in SAFETY_GUARDS or subtype != "AT_DisableTrig"):
                self.destructive(target, f"disables the safety-flag guard on {target} (safety flags could then be "
                                 "switched off)", target)
            if relation is None:
                continue
            if subtype == "AT_EnableRowSecurity":
                relation.rls, relation.rls_where = True, None
            elif subtype == "AT_DisableRowSecurity":
                relation.rls, relation.rls_where = False, self.where
            elif subtype == "AT_AddColumn":
                relation.columns[cmd.def_.colname] = any(
                    references_auth_users(c) for c in cmd.def_.constraints or ())
            elif subtype == "AT_AddConstraint" and references_auth_users(cmd.def_):
                for attr in cmd.def_.fk_attrs or ():
                    relation.columns[attr.sval] = True
            elif subtype == "AT_DropColumn":
                if cmd.missing_ok and cmd.name not in relation.columns:
                    continue
                relation.columns.pop(cmd.name, None)
                self.destructive(f"{target}.{cmd.name}", f"drops column {cmd.name} of {target}", target)
            elif subtype == "AT_AlterColumnType":
                self.destructive(f"{target}.{cmd.name}", f"changes the type of {target}.{cmd.name}", target)
            elif subtype in ("AT_SetRelOptions", "AT_ResetRelOptions") and relation.kind == "view":
                if any(getattr(o, "defname", "") == "security_invoker" for o in cmd.def_ or ()):
                    relation.security_invoker = subtype == "AT_SetRelOptions" and option_true(
                        cmd.def_, "security_invoker")

    def _RenameStmt(self, node) -> None:
        kind = enum(node.renameType)
        if kind in ("OBJECT_TABLE", "OBJECT_VIEW", "OBJECT_MATVIEW") and node.relation is not None:
            old = self.catalog.key(node.relation)
            relation = self.catalog.relations.pop(old, None)
            if relation is None:
                return
            if relation.rls and kind == "OBJECT_TABLE" and old not in self.created_here:
                self.destructive(old, f"renames {old}, a table with RLS, to {node.newname}", old)
            relation.name = node.newname
            self.catalog.relations[relation.qualified] = relation
        elif kind == "OBJECT_COLUMN" and node.relation is not None:
            relation = self.catalog.get(node.relation)
            if relation is not None and node.subname in relation.columns:
                relation.columns[node.newname] = relation.columns.pop(node.subname)
        elif kind == "OBJECT_POLICY" and node.relation is not None:
            relation = self.catalog.get(node.relation)
            if relation is not None and node.subname in relation.policies:
                policy = relation.policies.pop(node.subname)
                policy.name = node.newname
                relation.policies[node.newname] = policy
        elif kind == "OBJECT_SCHEMA":
            prefix = node.subname + "."
            for key in [k for k in self.catalog.relations if k.startswith(prefix)]:
                relation = self.catalog.relations.pop(key)
                relation.schema = node.newname
                self.catalog.relations[relation.qualified] = relation

    def _AlterObjectSchemaStmt(self, node) -> None:
        if node.relation is None:
            return
        relation = self.catalog.relations.pop(self.catalog.key(node.relation), None)
        if relation is not None:
            relation.schema = node.newschema
            self.catalog.relations[relation.qualified] = relation

    def _DropStmt(self, node) -> None:
        kind = enum(node.removeType)
        for obj in node.objects or ():
            if kind in ("OBJECT_TABLE", "OBJECT_VIEW", "OBJECT_MATVIEW"):
                names = [s.sval for s in obj]
                key = ".".join(names) if len(names) > 1 else f"{self.catalog.search_schema}.{names[0]}"
                existed = self.catalog.relations.pop(key, None)
                if existed is None and node.missing_ok:
                    continue  # `drop table if exists` of a table no migration made (the shadow's diff judges the rest)
                if kind == "OBJECT_TABLE" and key not in self.created_here:
                    self.destructive(key, f"drops table {key}", key if existed else None)
            elif kind == "OBJECT_SCHEMA":
                schema = obj.sval if hasattr(obj, "sval") else obj[0].sval
                for key in [k for k in self.catalog.relations if k.startswith(schema + ".")]:
                    del self.catalog.relations[key]
                self.destructive(schema, f"drops schema {schema}", None)
            elif kind == "OBJECT_POLICY":
                names = [s.sval for s in obj]
                table_key = ".".join(names[:-1]) if len(names) > 2 else f"{self.catalog.search_schema}.{names[0]}"
                relation = self.catalog.relations.get(table_key)
                if relation is not None:
                    relation.policies.pop(names[-1], None)
            elif kind in ("OBJECT_FUNCTION", "OBJECT_PROCEDURE"):
                self.catalog.functions.pop(function_key(obj.objname, self.catalog.search_schema), None)
            elif kind == "OBJECT_TRIGGER" and [s.sval for s in obj][-1] in SAFETY_GUARDS:
                self.destructive("ops.flags", f"drops the safety-flag guard {[s.sval for s in obj][-1]} (safety "
                                 "flags could then be switched off)", "ops.flags")

    def _TruncateStmt(self, node) -> None:
        for rangevar in node.relations:
            key = self.catalog.key(rangevar)
            if key not in self.created_here:
                self.destructive(key, f"truncates {key}", key)

    def _DeleteStmt(self, node) -> None:
        key = self.catalog.key(node.relation)
        if not reads_a_column(node.whereClause) and key not in self.created_here:
            self.destructive(key, f"deletes every row of {key} (DELETE without a condition on the rows)", key)

    def destructive(self, obj: str, what: str, table: str | None) -> None:
        found = destructive_unapproved.finding(obj, what, self.where, self.migration.filename,
                                               approved=self.markers.approve is not None,
                                               has_down=self.migration.down_sql is not None)
        if found is not None:
            self.findings.append(found)

    # -- code the migration runs (a DO block; a function, procedure, trigger or domain check)
    def _DoStmt(self, node) -> None:
        options = {o.defname: o.arg.sval for o in node.args or ()}
        self._code(options.get("as", ""), options.get("language", "plpgsql"), "a DO block")

    def _calls(self, node) -> None:
        for body, language, what in self._scan.called(node):
            self._code(body, language, what)

    def _CreateTrigStmt(self, node) -> None:
        function = self.catalog.functions.get(function_key(node.funcname, self.catalog.search_schema))
        if function is not None:
            self._code(function.body, function.language, f"trigger {node.trigname}, on every row it fires for")

    def _code(self, body: str, language: str, what: str) -> None:
        for obj, did, table in self._scan.losses(body, language):
            self.destructive(obj, f"{did} {CODE_MARK} ({what}: the shadow may not take every path of it)", table)

    # -- RLS policies
    def _CreatePolicyStmt(self, node) -> None:
        relation = self.catalog.get(node.table)
        if relation is None:
            return
        roles = role_names(node.roles) or ("public",)
        relation.policies[node.policy_name] = Policy(
            node.policy_name, node.cmd_name or "all", roles, bool(node.permissive),
            deparse(node.qual), deparse(node.with_check), self.where)

    def _AlterPolicyStmt(self, node) -> None:
        relation = self.catalog.get(node.table)
        policy = relation.policies.get(node.policy_name) if relation else None
        if policy is None:
            return
        if node.roles:
            policy.roles = role_names(node.roles)
        if node.qual is not None:
            policy.using = deparse(node.qual)
        if node.with_check is not None:
            policy.check = deparse(node.with_check)
        policy.where = self.where

    # -- privileges
    def _GrantStmt(self, node) -> None:
        privileges = {p.priv_name for p in node.privileges or ()} or {"all"}
        grantees = [g for g in role_names(node.grantees) if g in API_ROLES or g == "public"]
        if grantees and enum(node.objtype) in ("OBJECT_FUNCTION", "OBJECT_ROUTINE", "OBJECT_PROCEDURE"):
            self._grant_functions(node, privileges, grantees)
            return
        if not grantees or enum(node.objtype) not in ("OBJECT_TABLE", "OBJECT_VIEW", "OBJECT_MATVIEW",
                                                      "OBJECT_FOREIGN_TABLE"):
            return
        target = enum(node.targtype)
        if target == "ACL_TARGET_OBJECT":
            relations = [self.catalog.get(o) for o in node.objects]
        elif target == "ACL_TARGET_ALL_IN_SCHEMA":
            schemas = {o.sval for o in node.objects}
            relations = [r for r in self.catalog.relations.values() if r.schema in schemas]
        else:
            return
        for relation in filter(None, relations):
            for role in grantees:
                apply_grant(relation.grants.setdefault(role, set()), privileges, node.is_grant)

    def _grant_functions(self, node, privileges: set[str], grantees: list[str]) -> None:
        if enum(node.targtype) == "ACL_TARGET_ALL_IN_SCHEMA":
            schemas = {o.sval for o in node.objects}
            functions = [f for f in self.catalog.functions.values() if f.schema in schemas]
        else:
            functions = [self.catalog.functions.get(function_key(o.objname, self.catalog.search_schema))
                         for o in node.objects]
        for function in filter(None, functions):
            for role in grantees:
                apply_grant(function.grants.setdefault(role, set()), privileges, node.is_grant)

    def _AlterDefaultPrivilegesStmt(self, node) -> None:
        action = node.action
        kind = enum(action.objtype)
        if kind == "OBJECT_TABLE":
            defaults = self.catalog.default_grants
        elif kind in ("OBJECT_FUNCTION", "OBJECT_ROUTINE"):
            defaults = self.catalog.default_function_grants
        else:
            return
        schemas = [s.sval for o in node.options or () if o.defname == "schemas" for s in o.arg]
        privileges = {p.priv_name for p in action.privileges or ()} or {"all"}
        for schema in schemas or [self.catalog.search_schema]:
            for role in role_names(action.grantees):
                if role in API_ROLES or role == "public":
                    privs = defaults.setdefault(schema, {}).setdefault(role, set())
                    apply_grant(privs, privileges, action.is_grant)

    # -- functions
    def _CreateFunctionStmt(self, node) -> None:
        key = function_key(node.funcname, self.catalog.search_schema)
        previous = self.catalog.functions.get(key)
        grants = previous.grants if previous is not None and node.replace else \
            self.catalog.function_defaults(key.split(".", 1)[0])
        returns = node.returnType.names[-1].sval if node.returnType is not None else ""
        self.catalog.functions[key] = Function(
            key, option_true(node.options, "security"), sets_search_path(node.options), self.where,
            body=function_body(node), returns_trigger=returns in ("trigger", "event_trigger"), grants=grants,
            language=next((o.arg.sval for o in node.options or () if o.defname == "language"), "sql"))

    def _AlterFunctionStmt(self, node) -> None:
        function = self.catalog.functions.get(function_key(node.func.objname, self.catalog.search_schema))
        if function is None:
            return
        for action in node.actions or ():
            if action.defname == "security":
                function.security_definer = option_true((action,), "security")
            elif action.defname == "set" and action.arg.name == "search_path":
                function.search_path = enum(action.arg.kind) != "VAR_RESET"

    # -- indexes
    def _IndexStmt(self, node) -> None:
        key = self.catalog.key(node.relation)
        relation = self.catalog.relations.get(key)
        if node.concurrent or relation is None or relation.where.version == self.migration.version:
            return
        self.findings.append(index_not_concurrent.finding(node.idxname or '', key, self.where, relation.where.file))

    # -- session
    def _VariableSetStmt(self, node) -> None:
        if node.name == "search_path" and node.args:
            first = node.args[0].val
            if hasattr(first, "sval") and first.sval:
                self.catalog.search_schema = first.sval.split(",")[0].strip().strip('"')


