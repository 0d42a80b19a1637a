"""`supagate alerts`: evaluate a stack's alert rules against a database, or render the
ones the Supabase Metrics API can express as a Prometheus rules file."""

from __future__ import annotations

from pathlib import Path

from supagate.cli.common import DB_URL_ENV, EXIT_FAILED, EXIT_OK, UsageError, db_url, emit_json, err, out, \
    stack_settings


def register(sub) -> None:
    alerts = sub.add_parser("alerts", help="evaluate or render the stack's alert rules",
                            description="Alert rules live in the stack's `alerts` setting. Examples: "
                                        "SUPABASE_DB_URL=... supagate alerts evaluate --stack prod --at "
                                        "2026-11-22T10:00:00Z; supagate alerts render --stack prod --prometheus "
                                        "rules.yml")
    verbs = alerts.add_subparsers(dest="verb", required=True)
    ev = verbs.add_parser("evaluate", help="one evaluation of every rule (advances their state, queues notifications)")
    ev.add_argument("--db-url", help=f"database URL (or set {DB_URL_ENV})")
    ev.add_argument("--stack", required=True, help="the stack whose rules to evaluate")
    ev.add_argument("--stack-file", type=Path, help="use this file instead of Pulumi.<stack>.yaml")
    ev.add_argument("--at", help="evaluation time, ISO 8601 with a zone (default: the database's now())")
    ev.add_argument("--format", choices=("text", "json"), default="text")
    ev.set_defaults(func=evaluate)
    ren = verbs.add_parser("render", help="write a Prometheus rules file for the Metrics API kinds")
    ren.add_argument("--stack", required=True)
    ren.add_argument("--stack-file", type=Path)
    ren.add_argument("--prometheus", type=Path, required=True, metavar="FILE", help="the rules file to write")
    ren.set_defaults(func=render)


def _at(text: str | None):
    from datetime import datetime

    if text is None:
        return None
    try:
        at = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(f"--at {text!r} is not an ISO 8601 time (e.g. 2026-11-22T10:00:00Z)") from None
    if at.tzinfo is None:
        raise UsageError(f"--at {text!r} has no time zone; add Z for UTC")
    return at


def evaluate(args) -> int:
    from supagate.ops.alerts import evaluate as run_rules
    from supagate.postgres.connect import connect

    settings = stack_settings(args.stack, args.stack_file)
    rules = settings.alert_rules()
    if not rules:
        raise UsageError(f"stack {args.stack} declares no alert rules (alerts.rules in its stack file)")
    at = _at(args.at)
    url = db_url(args)
    with connect(url) as conn:
        states = run_rules(conn, rules, at)  # no ops schema: OpsMissing, exit 1 naming the command to run
    if args.format == "json":
        emit_json({"alerts": states})
    else:
        for state in states:
            value = "no data" if state["value"] is None else f"{state['value']:g}"
            since = f" since {state['since']}" if state["since"] and state["state"] != "inactive" else ""
            problem = f"  ERROR: {state['error']}" if state.get("error") else ""
            out(f"{state['state']:<9} {state['rule']}  value {value}{since}{problem}")
    # A rule that could not be evaluated is not a quiet rule.
    return EXIT_FAILED if any(s.get("error") for s in states) else EXIT_OK


def render(args) -> int:
    from supagate.ops.alerts import render_prometheus

    settings = stack_settings(args.stack, args.stack_file)
    text, skipped = render_prometheus(settings.alert_rules())
    args.prometheus.write_text(text)
    err(f"wrote {args.prometheus}" + (f"; evaluated in the database only (no Metrics API series): "
                                      f"{', '.join(skipped)}" if skipped else ""))
    return EXIT_OK
