"""storage-policy-permissive: a write policy on storage.objects that is true, or looks at
neither the bucket nor the owner, for anon/authenticated (anyone may overwrite or delete
any stored file); or a policy that lets anon list a bucket that is not public."""

import re

from supagate.findings import Finding
from supagate.gates.catalog.model import is_true
from supagate.gates.rule import Rule

ID = "storage-policy-permissive"
_BUCKET = re.compile(r"bucket_id", re.IGNORECASE)
_OWNER = re.compile(r"\bowner(_id)?\b|foldername|auth\s*\.\s*(uid|jwt)\s*\(", re.IGNORECASE)
_BUCKET_ID = re.compile(r"bucket_id\s*=\s*'([^']+)'", re.IGNORECASE)
FIX = ("Limit it to one bucket and the owner: TO authenticated USING/WITH CHECK (bucket_id = '<bucket>' and "
       "(storage.foldername(name))[1] = (select auth.uid())::text).")


def judge(name: str, command: str, roles, using: str | None, check: str | None, private_buckets: set[str],
          file=None, line=None, source="static") -> Finding | None:
    api = [r for r in roles if r in ("anon", "authenticated", "public")]
    if not api:
        return None
    text = f"{using or ''} {check or ''}"
    if command in ("insert", "update", "delete", "all"):
        condition_true = is_true(check) if command == "insert" else is_true(using) or is_true(check)
        if condition_true or not (_BUCKET.search(text) and _OWNER.search(text)):
            return Finding(ID, name, file=file, line=line, source=source, fix=FIX,
                           message=f"{name} lets {'/'.join(api)} {command.upper()} stored files "
                                   f"{'with no condition' if condition_true else 'without checking both the bucket and the owner'}: "
                                   "anyone signed in (or not) may overwrite or delete other users' files.")
    if command in ("select", "all") and any(r in ("anon", "public") for r in api):
        listed = set(_BUCKET_ID.findall(using or "")) & private_buckets
        if is_true(using) or listed:
            what = f"private bucket(s) {', '.join(sorted(listed))}" if listed else "every bucket, private ones included"
            return Finding(ID, name, file=file, line=line, source=source, fix=FIX,
                           message=f"{name} lets anon list and read {what}.")
    return None


def end_state(catalog):
    private = {b for b, public in catalog.buckets.items() if not public}
    for relation, policy in catalog.policies():
        if relation.qualified == "storage.objects":
            found = judge(policy.label(relation), policy.command, policy.roles, policy.using, policy.check, private,
                          policy.where.file, policy.where.line)
            if found is not None:
                yield found


CATALOG_QUERY = """
    SELECT schemaname || '.' || tablename || ' policy "' || policyname || '"', lower(cmd), roles::text[], qual,
           with_check, ARRAY(SELECT id FROM storage.buckets WHERE NOT coalesce(public, false))
    FROM pg_policies WHERE schemaname = 'storage' AND tablename = 'objects'"""


def from_catalog(name, command, roles, using, check, private) -> Finding | None:
    return judge(name, command, roles, using, check, set(private or ()), source="shadow")


RULE = Rule(ID, "a write policy on storage.objects that is true or ignores bucket and owner; anon listing a "
                "private bucket", policy="supabase-storage-forbid-permissive-policy", end_state=end_state,
            catalog_query=CATALOG_QUERY, from_catalog=from_catalog)
