"""What a gate rule is: its id, what it blocks, how strictly each tier enforces it, the
policy that enforces it in the pack, and the checks it brings (each optional):
- `end_state(catalog)`: findings over the replayed catalog model when the set ends;
- `catalog_query`: the same question asked of pg_catalog in a migrated database (the
  shadow database and `supagate verify`), one object name per row, and
  `from_catalog(name, *columns)`, the finding for one such row (or None).
Rules found while replaying statements, comparing history or probing are reported by
that code through the rule's own `finding` builders in gates/rules/<id>.py."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable

from supagate.findings import ADVISORY, MANDATORY, Finding

PRODUCTION, STAGING, DEVELOPMENT = "production", "staging", "development"
TIERS = (PRODUCTION, STAGING, DEVELOPMENT)


@dataclass(frozen=True)
class Rule:
    id: str
    summary: str
    production: str = MANDATORY
    staging: str = ADVISORY
    development: str = ADVISORY
    policy: str | None = None  # the pack policy that enforces it on resource inputs
    end_state: Callable[[object], Iterable[Finding]] | None = None
    catalog_query: str | None = None
    from_catalog: Callable[..., Finding | None] | None = None

    def enforcement(self, tier: str) -> str:
        return getattr(self, tier)
