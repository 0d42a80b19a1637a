"""not-promoted: (prod) a migration that staging has not applied with the same checksum.
`supagate check --staging-db-url` reads staging's history; the pack's stack policy
supabase-migrations-require-staging-first reads staging's stack outputs."""

from supagate.findings import Finding
from supagate.gates.rule import Rule

ID = "not-promoted"


def findings(migrations, staged: dict[str, str] | None, staging: str) -> list[Finding]:
    """Every migration bound for prod must be on staging with the same checksum."""
    found = []
    for m in migrations:
        have = (staged or {}).get(m.version)
        if have == m.checksum:
            continue
        state = "has not applied" if have is None else "applied a different version of"
        found.append(Finding(ID, m.filename, file=m.path or m.filename, line=1, source="history",
                             message=f"Staging ({staging}) {state} {m.filename}, so prod would run SQL staging "
                                     "never ran.",
                             fix="Deploy this commit to staging first (pulumi up --stack staging), then promote the "
                                 "same commit to prod."))
    return found


RULE = Rule(ID, "a prod migration that staging has not applied with the same checksum",
            policy="supabase-migrations-require-staging-first")
