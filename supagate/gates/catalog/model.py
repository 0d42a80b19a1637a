"""The catalog model that static analysis replays the migrations into: relations (tables,
views, materialized views) with their RLS state, policies, grants to the API roles and
personal-data columns; functions with SECURITY DEFINER and search_path.

Supabase's default privileges are assumed: anything created in `public` is granted to
anon and authenticated unless revoked."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

API_ROLES = ("anon", "authenticated")
# What a Supabase project exposes through its API when config.toml says nothing ([api] schemas).
DEFAULT_EXPOSED_SCHEMAS = ("public", "graphql_public")
OWNER_COLUMNS = {"user_id", "owner_id", "profile_id", "patient_id", "member_id", "created_by", "author_id",
                 "account_id"}
CONTACT_COLUMNS = {"email", "phone", "phone_number", "mobile", "address", "street_address", "postal_code",
                   "first_name", "last_name", "full_name", "date_of_birth", "birth_date", "dob", "ssn"}
SUPABASE_DEFAULT_GRANT_SCHEMAS = {"public"}  # Supabase grants new objects here to the API roles
# A function body that looks at its caller: it can tell users apart.
CALLER = re.compile(r"auth\s*\.\s*(uid|jwt|role|email)\s*\(|request\.jwt\.claim|current_setting\s*\(\s*'request\.jwt",
                    re.IGNORECASE)
_TRUE_TEXT = {"true", "cast('t' as bool)", "cast('true' as bool)", "cast('t' as boolean)",
              "cast('true' as boolean)", "1 = 1"}


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

    def broad_roles(self) -> list[str]:
        """The roles of the policy that reach anyone: anon and PUBLIC."""
        return [r for r in self.roles if r in ("anon", "public")]

    def label(self, relation: "Relation") -> str:
        return f'{relation.qualified} policy "{self.name}"'


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
    body: str = ""
    returns_trigger: bool = False
    language: str = "sql"
    grants: dict[str, set[str]] = field(default_factory=dict)  # role -> privileges (execute)

    @property
    def schema(self) -> str:
        return self.name.split(".", 1)[0]

    def executable_by(self, role: str) -> bool:
        """PUBLIC's EXECUTE reaches every role."""
        return any(privs & {"execute", "all"} for r, privs in self.grants.items() if r in (role, "public"))

    def reads_caller(self) -> bool:
        return bool(CALLER.search(self.body))


@dataclass
class Catalog:
    exposed: tuple[str, ...]
    relations: dict[str, Relation] = field(default_factory=dict)
    functions: dict[str, Function] = field(default_factory=dict)
    default_grants: dict[str, dict[str, set[str]]] = field(default_factory=dict)  # schema -> role -> privs
    # Functions: PostgreSQL grants EXECUTE to PUBLIC everywhere; Supabase adds the API roles in public.
    default_function_grants: dict[str, dict[str, set[str]]] = field(default_factory=dict)
    buckets: dict[str, bool] = field(default_factory=dict)  # storage bucket id -> public
    search_schema: str = "public"

    def __post_init__(self):
        for schema in SUPABASE_DEFAULT_GRANT_SCHEMAS:
            self.default_grants.setdefault(schema, {role: {"all"} for role in API_ROLES})
            self.default_function_grants.setdefault(schema, {role: {"all"} for role in API_ROLES})
        # Supabase's own tables that migrations put policies on (RLS is on there already).
        for name in ("objects", "buckets"):
            self.relations[f"storage.{name}"] = Relation("storage", name, "table", Where("(supabase)", 0, ""),
                                                         rls=True)

    def function_defaults(self, schema: str) -> dict[str, set[str]]:
        grants = {"public": {"execute"}}
        for role, privs in self.default_function_grants.get(schema, {}).items():
            grants[role] = set(privs)
        return grants

    def key(self, rangevar) -> str:
        return f"{rangevar.schemaname or self.search_schema}.{rangevar.relname}"

    def get(self, rangevar) -> Relation | None:
        return self.relations.get(self.key(rangevar))

    def policies(self):
        """(relation, policy) for every policy in the catalog."""
        for relation in self.relations.values():
            for policy in relation.policies.values():
                yield relation, policy


def is_true(text: str | None) -> bool:
    """Whether a deparsed condition is the constant true."""
    if text is None:
        return False
    normal = text.strip().lower()
    while normal.startswith("(") and normal.endswith(")"):
        normal = normal[1:-1].strip()
    return normal in _TRUE_TEXT
