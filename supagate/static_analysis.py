"""Static analysis of the migration set with pglast.

The files are replayed in order against a small model of the catalog: relations (tables,
views, materialized views) with their RLS state, policies, grants to anon/authenticated
and personal-data columns; functions with SECURITY DEFINER and search_path. Statement
rules fire where the statement is (a DROP without approval); state rules fire when the set
ends, at the statement that left the object that way (a table created without RLS).

Supabase's default privileges are assumed: anything created in `public` is granted to
anon and authenticated unless revoked. Dynamic SQL (`DO ... EXECUTE`) cannot be seen here;
the shadow database catches it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import pglast
from pglast.stream import RawStream

from .migrations import Migration
from .rules import Finding, Markers, read_markers

API_ROLES = ("anon", "authenticated")
OWNER_COLUMNS = {"user_id", "owner_id", "profile_id", "patient_id", "member_id", "created_by", "author_id",
                 "account_id"}
CONTACT_COLUMNS = {"email", "phone", "phone_number", "mobile", "address", "street_address", "postal_code",
                   "first_name", "last_name", "full_name", "date_of_birth", "birth_date", "dob", "ssn"}
SUPABASE_DEFAULT_GRANT_SCHEMAS = {"public"}  # Supabase grants new objects here to the API roles
_TRUE_TEXT = {"true", "cast('t' as bool)", "cast('true' as bool)", "cast('t' as boolean)",
              "cast('true' as boolean)", "1 = 1"}
_USER_METADATA = re.compile(r"user_metadata|raw_user_meta_data", re.IGNORECASE)


@dataclass
class Where:
    file: str
    line: int
    version: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}"


@dataclass
class Policy:
    name: str
    command: str  # all, select, insert, update, delete
    roles: tuple[str, ...]  # "public" when the policy has no TO
    permissive: bool
    using: str | None
    check: str | None
    where: Where


@dataclass
class Relation:
    schema: str
    name: str
    kind: str  # table, view, matview
    where: Where
    rls: bool = False
    rls_where: Where | None = None  # where RLS was last switched off, if it was
    columns: dict[str, bool] = field(default_factory=dict)  # column -> references auth.users
    policies: dict[str, Policy] = field(default_factory=dict)
    grants: dict[str, set[str]] = field(default_factory=dict)  # role -> privileges
    security_invoker: bool = False
    reads_auth_users: bool = False

    @property
    def qualified(self) -> str:
        return f"{self.schema}.{self.name}"

    @property
    def personal(self) -> bool:
        return any(refs or col in OWNER_COLUMNS or col in CONTACT_COLUMNS for col, refs in self.columns.items())

    def readable_by_api(self) -> bool:
        return any(privs & {"select", "all"} for role, privs in self.grants.items()
                   if role in API_ROLES or role == "public")


@dataclass
class Function:
    name: str
    security_definer: bool
    search_path: bool
    where: Where


@dataclass
class Catalog:
    exposed: tuple[str, ...]
    relations: dict[str, Relation] = field(default_factory=dict)
    functions: dict[str, Function] = field(default_factory=dict)
    default_grants: dict[str, dict[str, set[str]]] = field(default_factory=dict)  # schema -> role -> privs
    search_schema: str = "public"

    def __post_init__(self):
        for schema in SUPABASE_DEFAULT_GRANT_SCHEMAS:
            self.default_grants.setdefault(schema, {role: {"all"} for role in API_ROLES})

    def key(self, rangevar) -> str:
        return f"{rangevar.schemaname or self.search_schema}.{rangevar.relname}"

    def get(self, rangevar) -> Relation | None:
        return self.relations.get(self.key(rangevar))


@dataclass
class Analysis:
    findings: list[Finding]
    markers: dict[str, Markers]
    catalog: Catalog
    statements: int


def analyse(migrations: list[Migration], exposed_schemas=("public", "graphql_public")) -> Analysis:
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
    findings.extend(_end_state_findings(catalog))
    return Analysis(findings=findings, markers=markers, catalog=catalog, statements=count)


# ---------------------------------------------------------------- per statement

class _FileWalker:
    def __init__(self, catalog: Catalog, migration: Migration, file: str, markers: Markers,
                 findings: list[Finding]):
        self.catalog, self.migration, self.file = catalog, migration, file
        self.markers, self.findings = markers, findings
        self.created_here: set[str] = set()

    def statement(self, statement) -> None:
        try:
            nodes = pglast.parse_sql(statement.text)
        except pglast.parser.ParseError:
            return  # the shadow database reports it with the server's own message
        for raw in nodes:
            node = raw.stmt
            self.where = Where(self.file, statement.line + _leading_lines(statement.text), self.migration.version)
            handler = getattr(self, "_" + type(node).__name__, None)
            if handler is not None:
                handler(node)

    def report(self, rule: str, obj: str, message: str, fix: str) -> None:
        self.findings.append(Finding(rule=rule, object=obj, message=message, fix=fix,
                                     file=self.where.file, line=self.where.line))

    def exposed(self, schema: str) -> bool:
        return schema in self.catalog.exposed

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
                    _references_auth_users(c) for c in element.constraints or ())
            elif name == "Constraint" and _references_auth_users(element):
                for attr in element.fk_attrs or ():
                    relation.columns[attr.sval] = True

    def _CreateTableAsStmt(self, node) -> None:
        kind = "matview" if _enum(node.objtype) == "OBJECT_MATVIEW" else "table"
        relation = self._new_relation(node.into.rel, kind)
        relation.reads_auth_users = _reads_auth_users(node.query)
        for column in node.into.colNames or ():
            relation.columns[column.sval] = False

    def _ViewStmt(self, node) -> None:
        relation = self._new_relation(node.view, "view")
        relation.security_invoker = _option_true(node.options, "security_invoker")
        relation.reads_auth_users = _reads_auth_users(node.query)

    def _AlterTableStmt(self, node) -> None:
        relation = self.catalog.get(node.relation)
        target = self.catalog.key(node.relation)
        for cmd in node.cmds or ():
            subtype = _enum(cmd.subtype)
            if relation is None:
                continue
            if subtype == "AT_EnableRowSecurity":
                relation.rls, relation.rls_where = True, None
            elif subtype == "AT_DisableRowSecurity":
                relation.rls, relation.rls_where = False, self.where
            elif subtype == "AT_AddColumn":
                relation.columns[cmd.def_.colname] = any(
                    _references_auth_users(c) for c in cmd.def_.constraints or ())
            elif subtype == "AT_AddConstraint" and _references_auth_users(cmd.def_):
                for attr in cmd.def_.fk_attrs or ():
                    relation.columns[attr.sval] = True
            elif subtype == "AT_DropColumn":
                relation.columns.pop(cmd.name, None)
                self.destructive(f"{target}.{cmd.name}", f"drops column {cmd.name} of {target}", target)
            elif subtype == "AT_AlterColumnType":
                self.destructive(f"{target}.{cmd.name}", f"changes the type of {target}.{cmd.name}", target)
            elif subtype in ("AT_SetRelOptions", "AT_ResetRelOptions") and relation.kind == "view":
                if any(getattr(o, "defname", "") == "security_invoker" for o in cmd.def_ or ()):
                    relation.security_invoker = subtype == "AT_SetRelOptions" and _option_true(
                        cmd.def_, "security_invoker")

    def _RenameStmt(self, node) -> None:
        kind = _enum(node.renameType)
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
        kind = _enum(node.removeType)
        for obj in node.objects or ():
            if kind in ("OBJECT_TABLE", "OBJECT_VIEW", "OBJECT_MATVIEW"):
                names = [s.sval for s in obj]
                key = ".".join(names) if len(names) > 1 else f"{self.catalog.search_schema}.{names[0]}"
                existed = self.catalog.relations.pop(key, None)
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
                self.catalog.functions.pop(_function_key(obj.objname, self.catalog), None)

    def _TruncateStmt(self, node) -> None:
        for rangevar in node.relations:
            key = self.catalog.key(rangevar)
            if key not in self.created_here:
                self.destructive(key, f"truncates {key}", key)

    def _DeleteStmt(self, node) -> None:
        key = self.catalog.key(node.relation)
        if node.whereClause is None and key not in self.created_here:
            self.destructive(key, f"deletes every row of {key} (DELETE without WHERE)", key)

    def destructive(self, obj: str, what: str, table: str | None) -> None:
        missing = []
        if self.markers.approve is None:
            missing.append("an approval marker")
        if self.migration.down_sql is None:
            missing.append("a down script")
        if not missing:
            return
        stem = self.migration.filename[: -len(".sql")]
        self.report("destructive-unapproved", obj,
                    f"{self.file}:{self.where.line} {what} without {' and '.join(missing)}.",
                    "Review the data loss, then add `-- gate:approve <who approved, why>` to the file "
                    f"and a down script at supabase/migrations/down/{stem}.down.sql "
                    "(or make the change additive: add the new column or table and keep the old one).")

    # -- RLS policies
    def _CreatePolicyStmt(self, node) -> None:
        relation = self.catalog.get(node.table)
        if relation is None:
            return
        roles = _roles(node.roles) or ("public",)
        relation.policies[node.policy_name] = Policy(
            node.policy_name, node.cmd_name or "all", roles, bool(node.permissive),
            _deparse(node.qual), _deparse(node.with_check), self.where)

    def _AlterPolicyStmt(self, node) -> None:
        relation = self.catalog.get(node.table)
        policy = relation.policies.get(node.policy_name) if relation else None
        if policy is None:
            return
        if node.roles:
            policy.roles = _roles(node.roles)
        if node.qual is not None:
            policy.using = _deparse(node.qual)
        if node.with_check is not None:
            policy.check = _deparse(node.with_check)
        policy.where = self.where

    # -- privileges
    def _GrantStmt(self, node) -> None:
        privileges = {p.priv_name for p in node.privileges or ()} or {"all"}
        grantees = [g for g in _roles(node.grantees) if g in API_ROLES or g == "public"]
        if not grantees or _enum(node.objtype) not in ("OBJECT_TABLE", "OBJECT_VIEW", "OBJECT_MATVIEW"):
            return
        target = _enum(node.targtype)
        if target == "ACL_TARGET_OBJECT":
            relations = [self.catalog.get(o) for o in node.objects]
        elif target == "ACL_TARGET_ALL_IN_SCHEMA":
            schemas = {o.sval for o in node.objects}
            relations = [r for r in self.catalog.relations.values() if r.schema in schemas]
        else:
            return
        for relation in filter(None, relations):
            for role in grantees:
                _apply_grant(relation.grants.setdefault(role, set()), privileges, node.is_grant)

    def _AlterDefaultPrivilegesStmt(self, node) -> None:
        action = node.action
        if _enum(action.objtype) != "OBJECT_TABLE":
            return
        schemas = [s.sval for o in node.options or () if o.defname == "schemas" for s in o.arg]
        privileges = {p.priv_name for p in action.privileges or ()} or {"all"}
        for schema in schemas or [self.catalog.search_schema]:
            for role in _roles(action.grantees):
                if role in API_ROLES or role == "public":
                    privs = self.catalog.default_grants.setdefault(schema, {}).setdefault(role, set())
                    _apply_grant(privs, privileges, action.is_grant)

    # -- functions
    def _CreateFunctionStmt(self, node) -> None:
        key = _function_key(node.funcname, self.catalog)
        self.catalog.functions[key] = Function(
            key, _option_true(node.options, "security"), _sets_search_path(node.options), self.where)

    def _AlterFunctionStmt(self, node) -> None:
        function = self.catalog.functions.get(_function_key(node.func.objname, self.catalog))
        if function is None:
            return
        for action in node.actions or ():
            if action.defname == "security":
                function.security_definer = _option_true((action,), "security")
            elif action.defname == "set" and action.arg.name == "search_path":
                function.search_path = _enum(action.arg.kind) != "VAR_RESET"

    # -- indexes
    def _IndexStmt(self, node) -> None:
        key = self.catalog.key(node.relation)
        relation = self.catalog.relations.get(key)
        if node.concurrent or relation is None or relation.where.version == self.migration.version:
            return
        self.report("index-not-concurrent", node.idxname or key,
                    f"{self.file}:{self.where.line} builds index {node.idxname or ''} on {key} without "
                    f"CONCURRENTLY, blocking writes to a table created by {relation.where.file}.".replace("  ", " "),
                    "Use CREATE INDEX CONCURRENTLY in a migration file of its own (it cannot run in a "
                    "transaction; supagate runs such a file outside one).")

    # -- session
    def _VariableSetStmt(self, node) -> None:
        if node.name == "search_path" and node.args:
            first = node.args[0].val
            if hasattr(first, "sval") and first.sval:
                self.catalog.search_schema = first.sval.split(",")[0].strip().strip('"')


# ---------------------------------------------------------------- end of the set

def _end_state_findings(catalog: Catalog) -> list[Finding]:
    found: list[Finding] = []

    def report(rule: str, obj: str, where: Where, message: str, fix: str) -> None:
        found.append(Finding(rule=rule, object=obj, message=message, fix=fix, file=where.file, line=where.line))

    for relation in catalog.relations.values():
        name = relation.qualified
        exposed = relation.schema in catalog.exposed
        if relation.kind == "table" and exposed and not relation.rls:
            if relation.rls_where is not None:
                report("rls-disabled", name, relation.rls_where,
                       f"{relation.rls_where} disables row level security on {name}, in exposed schema "
                       f"{relation.schema}, so the API serves every row to anyone with the anon key.",
                       f"Remove the DISABLE, or re-enable it in a later migration: "
                       f"ALTER TABLE {name} ENABLE ROW LEVEL SECURITY; then add policies.")
            else:
                report("rls-missing", name, relation.where,
                       f"Table {name}, created at {relation.where}, is in exposed schema {relation.schema} "
                       "and ends the migrations without row level security.",
                       f"Add ALTER TABLE {name} ENABLE ROW LEVEL SECURITY; and a policy per operation "
                       f"(e.g. USING ((select auth.uid()) = user_id)), or move it to a schema the API does "
                       "not expose.")
        if relation.kind == "table" and exposed and relation.rls and not relation.policies:
            report("rls-no-policy", name, relation.where,
                   f"Table {name} has row level security but no policy, so the API can read and write "
                   "nothing in it.",
                   "Add the policies its users need, or, if only the service role uses it, say so with "
                   "`-- gate:allow rls-no-policy <reason>` in the migration.")
        for policy in relation.policies.values():
            found.extend(_policy_findings(relation, policy))
        if relation.kind == "view" and exposed and not relation.security_invoker:
            report("view-security-definer", name, relation.where,
                   f"View {name} in exposed schema {relation.schema} runs with its owner's rights, "
                   "bypassing the row level security of the tables it reads.",
                   f"Create it WITH (security_invoker = true), or ALTER VIEW {name} SET (security_invoker = true).")
        if relation.kind in ("view", "matview") and exposed and relation.reads_auth_users:
            report("view-auth-users", name, relation.where,
                   f"{relation.kind.replace('matview', 'Materialized view').replace('view', 'View')} {name} "
                   f"in exposed schema {relation.schema} reads auth.users, exposing users' emails and metadata.",
                   "Read a public profiles table kept in sync by a trigger instead, or move the view to an "
                   "unexposed schema.")
        if relation.kind == "matview" and exposed and relation.readable_by_api():
            report("matview-exposed", name, relation.where,
                   f"Materialized view {name} in exposed schema {relation.schema} is readable by the API "
                   "roles, and materialized views have no row level security.",
                   f"REVOKE ALL ON {name} FROM anon, authenticated; and serve it through a security_invoker "
                   "view or function that filters by auth.uid(), or move it to an unexposed schema.")
    for function in catalog.functions.values():
        if function.security_definer and not function.search_path:
            report("function-search-path", function.name, function.where,
                   f"SECURITY DEFINER function {function.name} has no pinned search_path, so a caller's "
                   "objects can shadow what it uses and run with its owner's rights.",
                   f"Add SET search_path = '' to the function and schema-qualify every name in its body "
                   f"(or ALTER FUNCTION {function.name} SET search_path = '').")
    return found


def _policy_findings(relation: Relation, policy: Policy) -> list[Finding]:
    found = []
    name = f"{relation.qualified} policy \"{policy.name}\""
    broad = [r for r in policy.roles if r in ("anon", "public")]
    where = policy.where

    def report(rule, message, fix):
        found.append(Finding(rule=rule, object=name, message=message, fix=fix, file=where.file, line=where.line))

    if broad and policy.permissive:
        writes = policy.command in ("insert", "update", "delete", "all")
        write_true = (_is_true(policy.check) if policy.command == "insert"
                      else _is_true(policy.using) or (policy.command != "delete" and _is_true(policy.check)))
        if writes and write_true:
            report("policy-permissive-write",
                   f"Policy \"{policy.name}\" on {relation.qualified} lets {'/'.join(broad)} "
                   f"{policy.command.upper()} any row (its condition is true).",
                   "Add TO authenticated and a condition on the owner, e.g. "
                   "WITH CHECK ((select auth.uid()) = user_id).")
        reads = policy.command in ("select", "all")
        if reads and _is_true(policy.using) and relation.personal:
            report("policy-public-read-personal",
                   f"Policy \"{policy.name}\" lets {'/'.join(broad)} read every row of {relation.qualified}, "
                   "which holds personal data.",
                   "Restrict it: TO authenticated USING ((select auth.uid()) = user_id); "
                   "publish non-personal columns through a security_invoker view if they must be public.")
    if any(_USER_METADATA.search(text or "") for text in (policy.using, policy.check)):
        report("policy-user-metadata",
               f"Policy \"{policy.name}\" on {relation.qualified} trusts user_metadata, which every user "
               "can edit for themselves.",
               "Use app_metadata (only the service role can set it): auth.jwt() -> 'app_metadata' ->> '<key>'.")
    return found


# ---------------------------------------------------------------- helpers

def _enum(value) -> str:
    return getattr(value, "name", str(value))


def _roles(specs) -> tuple[str, ...]:
    roles = []
    for spec in specs or ():
        kind = _enum(spec.roletype)
        if kind == "ROLESPEC_PUBLIC":
            roles.append("public")
        elif kind == "ROLESPEC_CSTRING":
            roles.append(spec.rolename)
        else:
            roles.append(kind.removeprefix("ROLESPEC_").lower())
    return tuple(roles)


def _apply_grant(privs: set[str], granted: set[str], is_grant: bool) -> None:
    if is_grant:
        privs |= granted
    elif "all" in granted:
        privs.clear()
    else:
        if "all" in privs:  # ALL minus some: expand so a revoke of SELECT takes effect
            privs.discard("all")
            privs |= {"select", "insert", "update", "delete", "truncate", "references", "trigger"}
        privs -= granted


def _deparse(node) -> str | None:
    return None if node is None else RawStream()(node)


def _is_true(text: str | None) -> bool:
    if text is None:
        return False
    normal = text.strip().lower()
    while normal.startswith("(") and normal.endswith(")"):
        normal = normal[1:-1].strip()
    return normal in _TRUE_TEXT


def _option_true(options, name: str) -> bool:
    for option in options or ():
        if getattr(option, "defname", None) != name:
            continue
        arg = option.arg
        if arg is None:
            return True
        if hasattr(arg, "boolval"):
            return bool(arg.boolval)
        if hasattr(arg, "sval"):
            return arg.sval.lower() in ("true", "on", "1", "yes")
        if hasattr(arg, "ival"):
            return bool(arg.ival)
    return False


def _sets_search_path(options) -> bool:
    return any(getattr(o, "defname", None) == "set" and o.arg.name == "search_path"
               and _enum(o.arg.kind) != "VAR_RESET" for o in options or ())


def _function_key(names, catalog: Catalog) -> str:
    parts = [n.sval for n in names]
    return ".".join(parts) if len(parts) > 1 else f"{catalog.search_schema}.{parts[0]}"


def _references_auth_users(constraint) -> bool:
    table = getattr(constraint, "pktable", None)
    return (_enum(getattr(constraint, "contype", "")) == "CONSTR_FOREIGN" and table is not None
            and table.schemaname == "auth" and table.relname == "users")


def _reads_auth_users(node) -> bool:
    for child in _walk(node):
        if type(child).__name__ == "RangeVar" and child.schemaname == "auth" and child.relname == "users":
            return True
    return False


def _walk(node):
    stack = [node]
    while stack:
        current = stack.pop()
        if isinstance(current, (list, tuple)):
            stack.extend(current)
        elif isinstance(current, pglast.ast.Node):
            yield current
            for attr in current.__slots__:
                value = getattr(current, attr, None)
                if isinstance(value, (pglast.ast.Node, list, tuple)):
                    stack.append(value)


def _leading_lines(text: str) -> int:
    """Lines of comments and blank space before a statement's first keyword."""
    position, count = 0, 0
    while position < len(text):
        if text.startswith("--", position):
            end = text.find("\n", position)
            position = len(text) if end < 0 else end
        elif text.startswith("/*", position):
            end = text.find("*/", position)
            end = len(text) if end < 0 else end + 2
            count += text.count("\n", position, end)
            position = end
        elif text[position] in " \t\r":
            position += 1
        elif text[position] == "\n":
            count += 1
            position += 1
        else:
            break
    return count
