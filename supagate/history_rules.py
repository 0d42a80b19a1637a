"""Gate rules that compare the files with what a database (or the staging stack) has
applied: migration-edited, migration-out-of-order and not-promoted. Used by
`supagate check` (reading history, read only) and by the policy pack (checksums from a
stack reference)."""

from __future__ import annotations

from .engine import Applied
from .migrations import Migration
from .rules import Finding


def applied_checksums(history: dict[str, Applied], migrations: list[Migration]) -> dict[str, str]:
    """version -> checksum of what was applied. A version `supabase db push` applied has no
    checksum of ours: it counts as the local file's when its statements are the file's."""
    local = {m.version: m for m in migrations}
    checksums = {}
    for version, row in history.items():
        if row.checksum is not None:
            checksums[version] = row.checksum
        elif version in local and list(row.statements) == local[version].statement_texts:
            checksums[version] = local[version].checksum
        else:
            checksums[version] = "<statements differ from the file>"
    return checksums


def history_findings(migrations: list[Migration], applied: dict[str, str], target: str) -> list[Finding]:
    findings = []
    newest = max(applied, default="")
    for m in migrations:
        where = m.path or m.filename
        if m.version in applied and applied[m.version] != m.checksum:
            findings.append(Finding(
                rule="migration-edited", object=m.filename, file=where, line=1, source="history",
                message=f"{m.filename} was applied to {target} and the file has changed since.",
                fix=f"Restore the file as applied (git log -p -- {where}) and put the change in a new "
                    f"migration; if the edit is cosmetic, accept it with `supagate migrate --repair {m.version}`."))
        elif m.version not in applied and m.version < newest:
            findings.append(Finding(
                rule="migration-out-of-order", object=m.filename, file=where, line=1, source="history",
                message=f"{m.filename} is new to {target} but older than its newest applied migration ({newest}).",
                fix="Rename it with a current timestamp (supabase migration new <name>, then move the SQL), "
                    "or apply it deliberately with `supagate migrate --include-all`."))
    return findings


def promotion_findings(migrations: list[Migration], staged: dict[str, str] | None, staging: str) -> list[Finding]:
    """Every migration bound for prod must be on staging with the same checksum."""
    findings = []
    for m in migrations:
        where = m.path or m.filename
        have = (staged or {}).get(m.version)
        if have == m.checksum:
            continue
        state = "has not applied" if have is None else "applied a different version of"
        findings.append(Finding(
            rule="not-promoted", object=m.filename, file=where, line=1, source="history",
            message=f"Staging ({staging}) {state} {m.filename}, so prod would run SQL staging never ran.",
            fix="Deploy this commit to staging first (pulumi up --stack staging), then promote the same "
                "commit to prod."))
    return findings
