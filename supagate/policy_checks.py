"""What each CrossGuard policy checks, as plain functions of a resource's inputs.

The pack's modules in policies/ only name, describe and register these; the logic lives
here so the pack, `supagate plan` and the tests run the same code. Each function returns
the violation messages (one sentence naming the object, then the fix); an empty list is
compliant. Migrations are always re-analysed from the SQL in the inputs.
"""

from __future__ import annotations

import ipaddress
import json
from functools import lru_cache
from typing import Any, Iterable

from . import static_analysis
from .history_rules import promotion_findings
from .migrations import MigrationFileError, sha256
from .resource_types import MIGRATIONS, PROJECT_SETTINGS, SECRET_INPUTS, migrations_from_inputs
from .rules import Finding, GateInputError

DEFAULT_EXPOSED = ("public", "graphql_public")


# ---------------------------------------------------------------- migrations

@lru_cache(maxsize=8)
def _analysis(key: tuple) -> tuple[list[Finding], dict] | str:
    """Static analysis of one migration set, shared by the per-rule policies of one run."""
    migrations_json, exposed = key
    props = {"migrations": json.loads(migrations_json)}
    try:
        migrations = migrations_from_inputs(props)
        analysis = static_analysis.analyse(migrations, exposed)
    except (MigrationFileError, GateInputError) as exc:
        return str(exc)
    return analysis.findings, analysis.markers


def _analyse_inputs(props: dict[str, Any], exposed: Iterable[str]) -> tuple[list[Finding], dict] | str:
    return _analysis((json.dumps(_plain(props.get("migrations") or []), sort_keys=True), tuple(exposed)))


def migration_findings(props: dict[str, Any], rule: str) -> list[str]:
    result = _analyse_inputs(props, props.get("exposed_schemas") or DEFAULT_EXPOSED)
    if isinstance(result, str):
        return [f"The migrations cannot be analysed: {result}"]
    findings, markers = result
    messages = []
    for finding in findings:
        if finding.rule != rule:
            continue
        file_markers = markers.get(finding.file or "")
        if file_markers and file_markers.allowed(rule, finding.line):
            continue  # reported by `supagate check` as allowed; the pack enforces the rest
        messages.append(f"{finding.message} Fix: {finding.fix}")
    return messages


def checksum_mismatches(props: dict[str, Any]) -> list[str]:
    messages = []
    for migration in props.get("migrations") or []:
        sql = migration.get("sql")
        name = f"{migration.get('version')}_{migration.get('name')}"
        if not isinstance(sql, str):
            messages.append(f"Migration {name} has no SQL the pack can read; pass the file contents as `sql`.")
        elif migration.get("checksum") != sha256(sql):
            messages.append(f"Migration {name}: the checksum does not match its SQL; rebuild the program's "
                            "inputs from supabase/migrations.")
    return messages


def promotion_violations(props: dict[str, Any]) -> list[str] | None:
    """None when the resource has no promotion input (staging itself)."""
    promotion = _plain(props.get("promotion"))
    if not promotion:
        return None
    migrations = migrations_from_inputs(props)
    staged = promotion.get("checksums")
    findings = promotion_findings(migrations, staged if isinstance(staged, dict) else None,
                                  promotion.get("stack") or "staging")
    return [f"{f.message} Fix: {f.fix}" for f in findings]


def function_promotion_violations(promotion: dict[str, Any], functions: dict[str, str]) -> list[str]:
    """Every function bound for prod runs the code staging runs (same content hash)."""
    staged = _plain(promotion.get("function_hashes"))
    stack = promotion.get("stack") or "staging"
    if not isinstance(staged, dict):
        return [f"Staging ({stack}) exports no functionHashes, so the functions prod would deploy cannot be "
                "compared with staging's. Fix: deploy this commit to staging first (pulumi up --stack staging)."]
    return [f"Edge function {slug} would deploy code staging ({stack}) does not run. Fix: deploy this commit to "
            "staging first, then promote the same commit to prod."
            for slug, digest in sorted(functions.items()) if staged.get(slug) != digest]


def rls_coverage(resources: Iterable[tuple[str, dict[str, Any]]]) -> list[str]:
    """Stack-wide: every table in a schema the API exposes (as the project settings say,
    or else as the migrations resource says) ends the migrations with RLS on."""
    resources = list(resources)
    api_schemas: set[str] = set()
    for type_, props in resources:
        if type_ == PROJECT_SETTINGS:
            schema_list = ((props.get("postgrest") or {}).get("db_schema") or "")
            api_schemas |= {s.strip() for s in schema_list.split(",") if s.strip()}
    messages = []
    for type_, props in resources:
        if type_ != MIGRATIONS:
            continue
        result = _analyse_inputs(props, sorted(api_schemas | set(props.get("exposed_schemas") or DEFAULT_EXPOSED)))
        if isinstance(result, str):
            return [f"The migrations cannot be analysed: {result}"]
        for finding in result[0]:
            if finding.rule in ("rls-missing", "rls-disabled"):
                messages.append(f"{finding.message} Fix: {finding.fix}")
    return messages


def _plain(value):
    """Policy inputs arrive wrapped in read-only proxies; json needs plain data."""
    if hasattr(value, "items"):
        return {k: _plain(v) for k, v in value.items()}
    if hasattr(value, "__iter__") and not isinstance(value, (str, bytes)):
        return [_plain(v) for v in value]
    return value


# ---------------------------------------------------------------- project settings

def ssl_violations(props: dict[str, Any]) -> list[str]:
    if props.get("ssl_enforced") is True:
        return []
    return [f"Project {props.get('project_ref')} accepts database connections without SSL. "
            "Fix: set sslEnforced: true in the stack's config."]


def network_violations(props: dict[str, Any]) -> list[str]:
    restrictions = props.get("network_restrictions") or {}
    cidrs = list(restrictions.get("dbAllowedCidrs") or []) + list(restrictions.get("dbAllowedCidrsV6") or [])
    if not cidrs:
        return [f"Project {props.get('project_ref')} accepts database connections from any address. "
                "Fix: list the CIDRs that need access in networkRestrictions."]
    messages = []
    for cidr in cidrs:
        try:
            network = ipaddress.ip_network(cidr, strict=False)
        except ValueError:
            messages.append(f"Network restriction {cidr!r} is not a CIDR. Fix: use a form like 203.0.113.0/24.")
            continue
        if network.prefixlen == 0:
            messages.append(f"Network restriction {cidr} opens the database to the whole internet. "
                            "Fix: list only the CIDRs that need access.")
    return messages


def jwt_expiry_violations(props: dict[str, Any], maximum: int) -> list[str]:
    expiry = (props.get("auth") or {}).get("jwt_exp")
    if isinstance(expiry, (int, float)) and expiry <= maximum:
        return []
    return [f"Project {props.get('project_ref')} issues access tokens valid for {expiry} s, more than "
            f"{maximum} s. Fix: set auth.jwtExpiry to {maximum} or less."]


def password_length_violations(props: dict[str, Any], minimum: int) -> list[str]:
    length = (props.get("auth") or {}).get("password_min_length")
    if isinstance(length, (int, float)) and length >= minimum:
        return []
    return [f"Project {props.get('project_ref')} accepts passwords of {length} characters, fewer than "
            f"{minimum}. Fix: set auth.passwordMinLength to at least {minimum}."]


# ---------------------------------------------------------------- functions and secrets

def function_jwt_violations(props: dict[str, Any], allow_unverified: Iterable[str]) -> list[str]:
    if props.get("verify_jwt") is not False:
        return []
    slug = props.get("slug")
    if slug not in set(allow_unverified):
        return [f"Edge function {slug} runs without JWT verification and is not on the allow-list. "
                "Fix: turn verify_jwt back on, or add the slug to this policy's allowUnverified in "
                "policies/config/<stack>.json after review."]
    if not props.get("signature_header"):
        return [f"Edge function {slug} runs without JWT verification and checks no signature. "
                "Fix: set functions.<slug>.signatureHeader to the header it verifies (HMAC)."]
    return []


def secret_output_violations(type_: str, props: dict[str, Any], secret_outputs: Iterable[str]) -> list[str]:
    declared = set(secret_outputs or ())
    messages = [f"Input {key} of this {type_.rsplit(':', 1)[-1]} holds secrets but is not a secret output, "
                "so its value would be stored in plain state. Fix: register the resource with "
                f"additional_secret_outputs=['{key}'] and pass the value from `pulumi config set --secret`."
                for key in SECRET_INPUTS.get(type_, ()) if key in props and key not in declared]
    for name, value in (props.get("secrets") or {}).items() if type_.endswith("FunctionSecrets") else ():
        if not value:
            messages.append(f"Function secret {name} is empty. Fix: pulumi config set --secret "
                            f"--path 'functionSecrets.{name}' VALUE.")
    return messages


# ---------------------------------------------------------------- GitHub environments

def environment_violations(props: dict[str, Any]) -> list[str]:
    name = props.get("environment")
    messages = []
    reviewers = [r for r in props.get("reviewers") or [] if (r.get("teams") or r.get("users"))]
    if not reviewers:
        messages.append(f"GitHub environment {name} deploys without a required reviewer. "
                        "Fix: list a team or user under github.environment.reviewers.")
    if props.get("preventSelfReview") is not True:
        messages.append(f"GitHub environment {name} lets whoever started a deploy approve it. "
                        "Fix: set github.environment.preventSelfReview: true.")
    if props.get("canAdminsBypass") is not False:
        messages.append(f"GitHub environment {name} lets repository admins skip its protection rules. "
                        "Fix: set can_admins_bypass to false.")
    policy = props.get("deploymentBranchPolicy") or {}
    if not (policy.get("protectedBranches") or policy.get("customBranchPolicies")):
        messages.append(f"GitHub environment {name} accepts deploys from any branch. "
                        "Fix: limit it to protected branches or to the release tags (deploymentBranches/"
                        "deploymentTags).")
    return messages
