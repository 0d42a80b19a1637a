"""No migration changes how the next one is read, or whose it is.

The static analysis (pglast) reads every file with PostgreSQL's default lexing:
`standard_conforming_strings = on`, UTF-8, `backslash_quote` not `on`. A file that changed
those for the session would make the server read the next file differently from the
gate (`select 'a\\'' ; drop table x; -- '` is one SELECT to the gate and a DROP to a
server with standard_conforming_strings off). A file that switched the session's role
would make the next files' objects someone else's. So:

- the engine's session starts with those settings forced (postgres/connect.py: startup
  options win over the URL, PGOPTIONS and `ALTER ROLE/DATABASE ... SET`);
- a file that sets them, or the role, visibly (`SET ...`, `SET SESSION AUTHORIZATION`) is
  refused when the files are loaded, naming the file and line (`refusal`); setting them to
  the values they already have (the header of `supabase db pull`) is fine;
- whatever a file did dynamically (`set_config`, `EXECUTE`, a function, a trigger) is
  caught by the guard (`guard_sql`), a SELECT that fails the file when the session is not
  as it started: it opens each file's query (a deferred trigger may act at the previous
  COMMIT) and runs again before and after the history rows, inside the file's transaction,
  so the file rolls back and nothing of it is recorded. Outside a transaction it runs
  before every statement.

The guard names only pg_catalog objects and operators (`OPERATOR(pg_catalog.=)`), so a
search_path a migration set cannot swap them for its own.
"""

from __future__ import annotations

# What the server must read SQL text with: setting -> values a file may set it to.
LEXING = {
    "standard_conforming_strings": ("on", "true", "yes", "1"),
    "client_encoding": ("utf8", "utf-8", "unicode"),
    "backslash_quote": ("safe_encoding", "off", "false", "no", "0"),
}
IDENTITY = ("role", "session_authorization")
GUARD_MARK = "supagate-session-changed:"


def refusal(text: str) -> str | None:
    """Why this SET/RESET statement may not be in a migration, or None."""
    import pglast

    try:
        nodes = pglast.parse_sql(text)
    except pglast.parser.ParseError:
        return None  # the server reports the syntax error
    for raw in nodes:
        node = raw.stmt
        if type(node).__name__ != "VariableSetStmt" or not node.name:
            continue
        kind = node.kind.name if hasattr(node.kind, "name") else str(node.kind)
        if kind not in ("VAR_SET_VALUE", "VAR_SET_CURRENT"):
            continue  # RESET, SET ... TO DEFAULT: back to what the engine set
        name = node.name.lower()
        if name.startswith("pg_stat_statements."):
            return (f"`SET {name}` changes what the shadow database's statement log sees (the gate reads what "
                    "a migration ran from it)\nRemove it: on Supabase the migration role cannot set it either.")
        if name in IDENTITY:
            value = _value(node)
            if name == "role" and value == "none":
                continue
            return (f"`{'SET SESSION AUTHORIZATION' if name != 'role' else 'SET ROLE'} {value}` switches "
                    "whose objects this and the following migrations create\nRemove it: migrations run as "
                    "the migration role; give an object another owner with `ALTER ... OWNER TO`.")
        if name in LEXING:
            value = _value(node)
            if value.lower() not in LEXING[name]:
                return (f"`SET {name} = {value}` changes how the server reads the SQL of the following "
                        f"migrations (the gate reads them with the defaults)\nRemove it: {name} must stay "
                        f"{LEXING[name][0]} (setting it to that, as `supabase db pull` headers do, is fine).")
    return None


def _value(node) -> str:
    if not node.args:
        return ""
    arg = node.args[0]
    val = getattr(arg, "val", arg)
    for attr in ("sval", "ival", "fval", "boolval"):
        if hasattr(val, attr):
            return str(getattr(val, attr))
    return str(val)


def guard_sql(role_oid: int, schema_oid: int = 0, history_oids: tuple[int, ...] = ()) -> str:
    """A SELECT that fails (a cast error carrying GUARD_MARK and what it saw) when the
    session's lexing settings or identity are not the engine's, or when anything (a trigger,
    a rule) sits on the history tables, where it would run with every later file's history,
    or those tables were replaced. Oids read once per run keep it to index lookups (it runs
    three times per file)."""
    eq, ne = "OPERATOR(pg_catalog.=)", "OPERATOR(pg_catalog.<>)"
    setting = "pg_catalog.current_setting('{}')".format
    oids = "'{" + ",".join(str(int(o)) for o in history_oids) + "}'::pg_catalog.oid[]"
    checks = [f"{setting('standard_conforming_strings')} {eq} 'on'",
              f"{setting('client_encoding')} {eq} 'UTF8'",
              f"{setting('backslash_quote')} {ne} 'on'",
              f"current_user {eq} session_user",
              f"(SELECT r.oid FROM pg_catalog.pg_roles r WHERE r.rolname {eq} session_user) {eq} "
              f"CAST({int(role_oid)} AS pg_catalog.oid)"]
    if history_oids:  # by the catalogs alone: another role may lack USAGE on the schema
        checks += [f"NOT EXISTS (SELECT FROM pg_catalog.pg_trigger t WHERE t.tgrelid {eq} ANY ({oids}) "
                   "AND NOT t.tgisinternal)",
                   f"NOT EXISTS (SELECT FROM pg_catalog.pg_rewrite w WHERE w.ev_class {eq} ANY ({oids}))",
                   f"NOT EXISTS (SELECT FROM pg_catalog.pg_class c WHERE c.relnamespace {eq} "
                   f"CAST({int(schema_oid)} AS pg_catalog.oid) AND c.relname {eq} ANY "
                   f"('{{schema_migrations,supagate_migrations}}'::pg_catalog.name[]) AND c.oid {ne} ALL ({oids}))"]
    seen = ", ',', ".join([setting("standard_conforming_strings"), setting("client_encoding"),
                          setting("backslash_quote"), "session_user", "current_user"])
    return (f"SELECT CAST(CASE WHEN {' AND '.join(checks)} THEN '0' "
            f"ELSE pg_catalog.concat('{GUARD_MARK}', {seen}) END AS pg_catalog.int4)")


def staged_sql(ord_: int, digest: str) -> str:
    """A SELECT that fails when the history values staged for this file
    (pg_temp.supagate_pending, row `ord_`) are gone or not what was sent (`digest`, the md5
    of the row as the server printed it right after the COPY)."""
    if not all(c in "0123456789abcdef" for c in digest) or len(digest) != 32:
        raise ValueError("a staged row's digest is 32 hex digits")
    eq = "OPERATOR(pg_catalog.=)"
    return (f"SELECT CAST(CASE WHEN EXISTS (SELECT FROM pg_temp.supagate_pending p WHERE p.ord {eq} {int(ord_)} "
            f"AND pg_catalog.md5(CAST(p AS pg_catalog.text)) {eq} '{digest}') THEN '0' "
            f"ELSE '{GUARD_MARK}staged' END AS pg_catalog.int4)")


def changed(exc) -> str | None:
    """What the guard saw, when `exc` is the guard's failure; else None."""
    message = getattr(getattr(exc, "diag", None), "message_primary", None) or ""
    at = message.find(GUARD_MARK)
    if at < 0:
        return None
    seen = message[at + len(GUARD_MARK):].rstrip('"').split(",")
    if len(seen) != 5:
        return "the history values staged for this file were changed or removed"
    scs, encoding, backslash, session_user, current_user = seen
    what = []
    if scs != "on":
        what.append(f"standard_conforming_strings is {scs}")
    if encoding != "UTF8":
        what.append(f"client_encoding is {encoding}")
    if backslash == "on":
        what.append("backslash_quote is on")
    if current_user != session_user:
        what.append(f"the role is {current_user}")
    if not what:
        what.append(f"the session user is {session_user}, or a trigger or rule sits on the history tables")
    return ", ".join(what)


def explain(where: str, migration, seen: str, transactional: bool) -> str:
    """The message for a file the guard stopped: what changed, the statement that did it
    when it is visible, and the fix."""
    line = next((s.line for s, kind in zip(migration.statements, migration.kinds)
                 if kind == "session" or "set_config" in s.text.lower() or " role" in s.text.lower()), None)
    at = f" (look at line {line})" if line else " (through dynamic SQL or a function it calls)"
    done = ("Nothing from this file was applied; earlier files stay applied." if transactional else
            "Statements before this one were applied (this file runs outside a transaction); its history "
            "row was not written, and no further statement was sent.")
    return (f"failed to apply {where}: it changes how the following migrations are read or whose they are: "
            f"{seen}{at}\n{done}\nRemove the change: migrations must leave standard_conforming_strings on, "
            "client_encoding UTF8, backslash_quote off or safe_encoding, and run as the migration role "
            "(give objects another owner with `ALTER ... OWNER TO`).")
