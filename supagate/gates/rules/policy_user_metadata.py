"""policy-user-metadata: a policy that trusts `user_metadata` (users can edit it)."""

import re

from supagate.findings import Finding
from supagate.gates.rule import Rule

ID = "policy-user-metadata"
USER_METADATA = re.compile(r"user_metadata|raw_user_meta_data", re.IGNORECASE)


def end_state(catalog):
    for relation, policy in catalog.policies():
        if any(USER_METADATA.search(text or "") for text in (policy.using, policy.check)):
            yield Finding(ID, policy.label(relation), file=policy.where.file, line=policy.where.line,
                          message=f"Policy \"{policy.name}\" on {relation.qualified} trusts user_metadata, which "
                                  "every user can edit for themselves.",
                          fix="Use app_metadata (only the service role can set it): "
                              "auth.jwt() -> 'app_metadata' ->> '<key>'.")


CATALOG_QUERY = """
    SELECT schemaname || '.' || tablename || ' policy "' || policyname || '"' FROM pg_policies
    WHERE schemaname = ANY(%(exposed)s)
      AND (coalesce(qual, '') || coalesce(with_check, '')) ~* '(user_metadata|raw_user_meta_data)'"""


def from_catalog(name: str) -> Finding:
    return Finding(ID, name, source="shadow", message=f"{name} trusts user_metadata in the migrated database.",
                   fix="Use app_metadata: auth.jwt() -> 'app_metadata'.")


RULE = Rule(ID, "a policy that trusts user_metadata, which users can edit",
            policy="supabase-policies-forbid-user-metadata", end_state=end_state, catalog_query=CATALOG_QUERY,
            from_catalog=from_catalog)
