"""function-definer-exposed: a SECURITY DEFINER function in an exposed schema (callable
through the API as an RPC) that anon can execute, or that authenticated can execute while
its body never looks at the caller. Supabase grants EXECUTE on new functions in public to
anon and authenticated, and PostgreSQL to PUBLIC: both must be revoked. An authenticated
RPC that checks the caller is reported as advisory, with that reason."""

from supagate.findings import Finding
from supagate.gates.rule import Rule

ID = "function-definer-exposed"
FIX = ("Revoke execute (REVOKE EXECUTE ON FUNCTION {f} FROM PUBLIC, anon, authenticated), move it to a schema "
       "the API does not expose, or check the caller in its body; if it is meant to be public, "
       "`-- gate:allow function-definer-exposed <why>`.")


def _finding(name: str, anon: bool, authenticated: bool, reads_caller: bool, file=None, line=None,
             source="static") -> Finding | None:
    if anon:
        return Finding(ID, name, file=file, line=line, source=source, fix=FIX.format(f=name),
                       message=f"SECURITY DEFINER function {name} runs with its owner's rights and anon can call it "
                               "through the API, with no sign-in at all.")
    if authenticated and not reads_caller:
        return Finding(ID, name, file=file, line=line, source=source, fix=FIX.format(f=name),
                       message=f"SECURITY DEFINER function {name} runs with its owner's rights for any signed-in "
                               "user, and its body never looks at the caller (auth.uid(), auth.jwt()).")
    if authenticated:
        return Finding(ID, name, file=file, line=line, source=source, fix=FIX.format(f=name),
                       advisory_reason="it checks the caller (auth.uid()/auth.jwt()) in its body",
                       message=f"SECURITY DEFINER function {name} runs with its owner's rights for any signed-in "
                               "user; it checks the caller in its body, so this is advisory: review that check.")
    return None


def end_state(catalog):
    for f in catalog.functions.values():
        if f.security_definer and not f.returns_trigger and f.schema in catalog.exposed:
            found = _finding(f.name, f.executable_by("anon"), f.executable_by("authenticated"), f.reads_caller(),
                             f.where.file, f.where.line)
            if found is not None:
                yield found


CATALOG_QUERY = r"""
    SELECT n.nspname || '.' || p.proname, has_function_privilege('anon', p.oid, 'EXECUTE'),
           has_function_privilege('authenticated', p.oid, 'EXECUTE'),
           p.prosrc ~* 'auth\s*\.\s*(uid|jwt|role|email)\s*\(|request\.jwt\.claim'
    FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
    WHERE p.prosecdef AND n.nspname = ANY(%(exposed)s)
      AND p.prorettype NOT IN ('trigger'::regtype, 'event_trigger'::regtype)"""


def from_catalog(name: str, anon: bool, authenticated: bool, reads_caller: bool) -> Finding | None:
    return _finding(name, anon, authenticated, reads_caller, source="shadow")


RULE = Rule(ID, "a SECURITY DEFINER function in an exposed schema that anon (or, without a caller check, "
                "authenticated) can execute", policy="supabase-functions-forbid-exposed-definer",
            end_state=end_state, catalog_query=CATALOG_QUERY, from_catalog=from_catalog)
