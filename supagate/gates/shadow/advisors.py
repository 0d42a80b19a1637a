"""Supabase's own advisors (`supabase db advisors`, the pinned CLI) against the shadow
database, mapped into findings; a lint that one of our rules already reports for the
same object is left to ours (which carries the file and line)."""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from pathlib import Path

from supagate.errors import Failed
from supagate.findings import Finding
from supagate.gates.shadow.probes import PROBE_SCHEMA
from supagate.postgres.connect import libpq_env
from supagate.secrets import redact, url_without_password

# Supabase's lints that say what one of our rules says: ours carry the file and line.
ADVISOR_EQUIVALENTS = {
    "rls_disabled_in_public": "rls-missing",
    "security_definer_view": "view-security-definer",
    "auth_users_exposed": "view-auth-users",
    "materialized_view_in_api": "matview-exposed",
    "rls_enabled_no_policy": "rls-no-policy",
    "function_search_path_mutable": "function-search-path",
    "foreign_table_in_api": "foreign-table-exposed",
    "rls_references_user_metadata": "policy-user-metadata",
}
# Lints that read usage statistics, which a just-built database does not have.
ADVISOR_NEEDS_TRAFFIC = {"unused_index"}


class AdvisorError(Failed):
    """The advisors could not run (not a migration's fault)."""


def run_advisors(supabase_cli: str, url: str) -> list[dict]:
    """`supabase db advisors` against the shadow database; the password, if any, goes in
    PGPASSWORD, never on the command line."""
    env = {**os.environ, **libpq_env(url)}
    bare = url_without_password(url)
    with tempfile.TemporaryDirectory(prefix="supagate-advisors-") as workdir:
        Path(workdir, "supabase").mkdir()  # an empty project: the CLI wants a supabase/ folder
        done = subprocess.run(
            [supabase_cli, "--workdir", workdir, "db", "advisors", f"--remote={bare}", "--type", "all",
             "--level", "info", "--output-format", "json"],
            capture_output=True, text=True, env=env, timeout=300)
    if done.returncode != 0:
        raise AdvisorError(f"failed to run supabase db advisors: {redact(done.stderr.strip()[-500:], url)}\n"
                          "Check the pinned Supabase CLI is installed (npm install).")
    try:
        return json.loads(done.stdout).get("results") or []
    except json.JSONDecodeError:
        raise AdvisorError("failed to read supabase db advisors output: not JSON\n"
                          "Check the Supabase CLI version is the pinned 3.1.0.") from None



def advisor_findings(lints: list[dict], ours: list[Finding]) -> list[Finding]:
    seen = {(f.rule, f.object) for f in ours}
    found = []
    for lint in lints:
        meta = lint.get("metadata") or {}
        obj = ".".join(p for p in (meta.get("schema"), meta.get("name")) if p) or lint.get("name", "?")
        if lint.get("name") in ADVISOR_NEEDS_TRAFFIC or meta.get("schema") == PROBE_SCHEMA:
            continue  # the probes' helper may exist while the advisors read the catalog
        equivalent = ADVISOR_EQUIVALENTS.get(lint.get("name", ""))
        if equivalent and (equivalent, obj) in seen:
            continue  # one of our rules already says this, with more detail
        found.append(Finding(
            rule=f"advisor/{lint.get('name')}", object=obj, level=lint.get("level"), source="advisor",
            message=(lint.get("detail") or lint.get("title") or "").replace("\n", " ").strip(),
            fix=f"See {lint.get('remediation')}" if lint.get("remediation") else "See Supabase's database linter docs."))
    return found
