"""`supagate init`: the files a team with an existing Supabase app needs, written from the
app itself: both stack files (with their tiers), the policy pack configs and the workflows.

What it reads: supabase/config.toml (`[api] schemas` and `max_rows`, `[auth]` jwt expiry and
password length, each function's `verify_jwt`), the functions folders. What it cannot know
(project refs, the repository, the signature header of a function without JWT) comes from
flags; a function without JWT and without its header is written so that loading the stack
fails, naming the key, until the header is set (never a guessed value)."""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass
from pathlib import Path

import yaml

from supagate.errors import BadInput


class InitError(BadInput):
    pass


@dataclass
class InitOptions:
    staging_ref: str
    prod_ref: str
    org: str  # the Pulumi organization, for prod's stagingStack reference
    repository: str = ""  # owner/name on GitHub (delivery is left out when empty)
    region: str = "us-east-1"
    signature_headers: dict[str, str] | None = None  # slug -> header, for functions without JWT
    reviewers: tuple[str, ...] = ()  # who approves a production deploy (users, or org/team)
    allowed_cidrs: tuple[str, ...] = ()  # networks that may reach the database directly
    force: bool = False


def _config(project: Path) -> dict:
    path = project / "supabase" / "config.toml"
    if not path.exists():
        raise InitError(f"{path}: no such file\nRun `supabase init` first, or pass --project to the app's root.")
    try:
        return tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise InitError(f"{path}: not valid TOML ({exc})\nFix the file.") from None


def _unverified(project: Path, config: dict) -> list[str]:
    functions = project / "supabase" / "functions"
    slugs = sorted(p.name for p in functions.iterdir() if p.is_dir() and not p.name.startswith(("_", "."))) \
        if functions.is_dir() else []
    declared = config.get("functions") or {}
    return [s for s in slugs if (declared.get(s) or {}).get("verify_jwt", True) is False]


def stack_document(tier: str, ref: str, config: dict, options: InitOptions, unverified: list[str]) -> dict:
    api, auth = config.get("api") or {}, config.get("auth") or {}
    ns = "supabase-platform"
    values: dict = {
        f"{ns}:tier": tier,
        f"{ns}:projectRef": ref,
        f"{ns}:region": options.region,
        f"{ns}:exposedSchemas": list(api.get("schemas") or ["public", "graphql_public"]),
        f"{ns}:maxRows": int(api.get("max_rows") or 1000),
        f"{ns}:auth": {"jwtExpiry": int(auth.get("jwt_expiry") or 3600),
                       "passwordMinLength": max(int(auth.get("minimum_password_length") or 10), 8)},
        f"{ns}:sslEnforced": True,
        f"{ns}:networkRestrictions": list(options.allowed_cidrs),
        f"{ns}:functions": {slug: ({"signatureHeader": (options.signature_headers or {})[slug]}
                                   if slug in (options.signature_headers or {}) else {})
                            for slug in unverified},
        # A function without JWT is public: its rate limit is proved after every deploy.
        f"{ns}:secretNames": ["RATE_LIMIT_PROBE_SECRET"] if unverified else [],
        f"{ns}:rateLimits": {slug: {"limit": 100, "window": "1m", "key": "ip", "probe": True} for slug in unverified},
        f"{ns}:stagingStack": f"{options.org}/supabase-platform/staging" if tier == "production" else "",
    }
    if options.repository:
        values[f"{ns}:github"] = {"repository": options.repository,
                                  "environment": {"reviewers": list(options.reviewers), "preventSelfReview": True,
                                                  "deploymentBranches": ["main"],
                                                  "deploymentTags": ["v*"] if tier == "production" else []}}
    return {"config": values}


def operations(project: Path) -> tuple[dict, list[str]]:
    """The alert rules and maintenance an adopted app starts with, and the kinds they cover:
    connections, cron failures and the scheduler heartbeat always; overdue jobs and dead
    letters when the migrations create the job tables those kinds read by default."""
    from supagate.gates.catalog.replay import analyse
    from supagate.migrations.files import load_migrations

    directory = project / "supabase" / "migrations"
    tables = set(analyse(load_migrations(directory)).catalog.relations) if directory.is_dir() else set()
    paging = ["oncall", "issues"]
    rules = {"connections": {"kind": "connectionSaturation", "percent": 80, "for": "5m", "severity": "critical",
                             "notify": paging},
             "cron-failures": {"kind": "cronFailures", "above": 0, "window": "1h", "severity": "critical",
                               "notify": paging},
             "scheduler-heartbeat": {"kind": "schedulerHeartbeat", "maxAge": "3m", "severity": "critical",
                                     "notify": paging},
             "slow-queries": {"kind": "slowQueries", "meanMs": 250, "minCalls": 50, "window": "15m"}}
    if "public.background_jobs" in tables:
        rules["overdue-jobs"] = {"kind": "overdueJobs", "for": "15m", "severity": "critical", "notify": paging}
    if "public.background_jobs_dlq" in tables:
        rules["dead-letters"] = {"kind": "deadLetters", "window": "24h"}
    alerts = {"channels": {"oncall": {"type": "webhook", "secret": "ONCALL_WEBHOOK_URL",
                                      "signWith": "ONCALL_WEBHOOK_HMAC"},
                           "issues": {"type": "githubIssue", "labels": ["alert"]}},
              "defaults": {"for": "5m", "keepFiringFor": "5m", "repeatInterval": "4h", "notify": ["issues"]},
              "rules": rules}
    return alerts, sorted({spec["kind"] for spec in rules.values()} - {"slowQueries"})


OPS_DOWN = ("-- Removes supagate's operations schema: alert rules, their state and undelivered notifications,\n"
            "-- flags, rate-limit counters, and the one function it put in public.\n"
            "drop function if exists public.supagate_hit_rate_limit(text, text, text);\n"
            "drop schema if exists ops cascade;\n")


def ops_migration(directory: Path) -> list[tuple[Path, str]]:
    """The migration creating the ops schema (and its down script when the app keeps them
    in down/), unless one in `directory` already does: then nothing. Versioned after the
    last migration so the gates do not call it late."""
    from supagate.ops.alerts import ops_sql

    existing = sorted(directory.glob("*.sql")) if directory.is_dir() else []
    if any("create function ops.version()" in p.read_text() for p in existing):
        return []
    from datetime import datetime, timedelta, timezone

    stamp = datetime.now(timezone.utc).replace(microsecond=0, tzinfo=None)
    versions = [p.name.split("_", 1)[0] for p in existing if p.name.split("_", 1)[0].isdigit()]
    version = f"{stamp:%Y%m%d%H%M%S}"
    if versions and max(versions) >= version:
        try:
            version = f"{datetime.strptime(max(versions)[:14], '%Y%m%d%H%M%S') + timedelta(seconds=1):%Y%m%d%H%M%S}"
        except ValueError:  # not a timestamp version: the next number sorts after it all the same
            version = str(int(max(versions)) + 1)
    files = [(directory / f"{version}_supagate_ops.sql", ops_sql())]
    if (directory / "down").is_dir():
        files.append((directory / "down" / f"{version}_supagate_ops.down.sql", OPS_DOWN))
    return files


def shared_modules(functions: Path) -> list[tuple[Path, str]]:
    """The Deno modules the app's edge functions import (flag bucketing, the shared rate
    limiter, the OFREP handler), when the app has functions."""
    from importlib import resources

    if not functions.is_dir():
        return []
    source = resources.files("supagate.ops").joinpath("deno")
    return [(functions / "_shared" / f"supagate_{name}.ts", source.joinpath(f"{name}.ts").read_text())
            for name in ("flags", "rate_limit", "ofrep")]


def pack_configs(unverified: list[str], required_kinds: list[str] | None = None) -> dict[str, dict]:
    """The three configs the workflows name, at the registry's levels."""
    from supagate.gates.registry import policy_levels

    def config(tier: str, phase: str = "deploy") -> dict:
        levels = policy_levels(tier, phase)
        document: dict = {"all": "mandatory" if tier == "production" else "advisory"}
        for name, level in sorted(levels.items()):
            if level != document["all"]:
                document[name] = level
        document["supabase-functions-require-jwt"] = {"enforcementLevel": levels["supabase-functions-require-jwt"],
                                                      "allowUnverified": unverified}
        if required_kinds is not None:
            document["supabase-alerts-require-coverage"] = {
                "enforcementLevel": levels["supabase-alerts-require-coverage"], "requiredKinds": required_kinds}
        if phase == "pull-request":
            document["supabase-migrations-require-staging-first"] = {"enforcementLevel": "advisory",
                                                                     "phase": "pull-request"}
        return document

    return {"prod.json": config("production"), "prod-pull-request.json": config("production", "pull-request"),
            "staging.json": config("staging")}


def plan_files(project: Path, options: InitOptions) -> dict[Path, str]:
    """Every file init would write, and its text."""
    config = _config(project)
    unverified = _unverified(project, config)
    files: dict[Path, str] = {}
    alerts, kinds = operations(project)
    for stack, tier, ref in (("staging", "staging", options.staging_ref), ("prod", "production", options.prod_ref)):
        header = (f"# Written by `supagate init` from supabase/config.toml; tier {tier}.\n"
                  f"# Secrets: pulumi config set --secret dbUrl ... --stack {stack} (see the next steps it printed).\n")
        document = stack_document(tier, ref, config, options, unverified)
        document["config"]["supabase-platform:alerts"] = alerts
        document["config"]["supabase-platform:maintenance"] = {"historyRetentionDays": 14}
        files[project / f"Pulumi.{stack}.yaml"] = header + yaml.safe_dump(document, sort_keys=False)
    for path, text in (*ops_migration(project / "supabase" / "migrations"),
                       *shared_modules(project / "supabase" / "functions")):
        files[path] = text
    for name, document in pack_configs(unverified, kinds).items():
        files[project / "policies" / "config" / name] = json.dumps(document, indent=2) + "\n"
    return files  # a function in `missing` has no header: loading the stacks names the key until it is set


def next_steps(options: InitOptions, unverified: list[str]) -> list[str]:
    steps = []
    for stack in ("staging", "prod"):
        steps += [f"pulumi stack init {options.org}/{stack}" if options.org else f"pulumi stack init {stack}",
                  f"pulumi config set --secret dbUrl 'postgresql://postgres:...@db.<ref>.supabase.co:5432/postgres' "
                  f"--stack {stack}",
                  f"pulumi config set --secret supabaseAccessToken 'sbp_...' --stack {stack}",
                  f"pulumi config set --secret --path 'alertSecrets.ONCALL_WEBHOOK_URL' 'https://...' --stack {stack}",
                  f"pulumi config set --secret --path 'alertSecrets.ONCALL_WEBHOOK_HMAC' \"$(openssl rand -hex 32)\" "
                  f"--stack {stack}"]
    if unverified:
        steps += [f"pulumi config set --secret --path 'functionSecrets.RATE_LIMIT_PROBE_SECRET' \"$(openssl rand -hex 32)\" "
                  f"--stack {stack}" for stack in ("staging", "prod")]
        steps.append(f"call the shared limiter first in {', '.join(unverified)}: "
                     "`const limited = await rateLimit(req, \"<slug>\"); if (limited instanceof Response) return limited;` "
                     "(import from ../_shared/supagate_rate_limit.ts); `supagate verify --rate-limit` proves it")
    for slug in unverified:
        if slug not in (options.signature_headers or {}):
            steps.append(f"set the header function {slug} verifies: supabase-platform:functions.{slug}.signatureHeader "
                         "in both stack files (or rerun init with --signature-header "
                         f"{slug}=<header> --force)")
    if not options.reviewers:
        steps.append("name who approves prod deploys: --reviewer org/team (rerun init with --force); the pack blocks "
                     "a production environment without one")
    if not options.allowed_cidrs:
        steps.append("list the networks that may reach the database: --allowed-cidr 203.0.113.0/24 (rerun init with "
                     "--force); the pack blocks a production database open to every address")
    steps += ["uv run supagate check --stack staging && uv run supagate check --stack prod",
              "uv run supagate plan --stack prod", "pulumi preview --stack staging --policy-pack policies "
              "--policy-pack-config policies/config/staging.json"]
    return steps


def write(project: Path, options: InitOptions) -> tuple[list[str], list[str]]:
    """(written, unchanged) file names; refuses to overwrite a different file without force."""
    files = plan_files(project, options)
    differing = [p for p, text in files.items() if p.exists() and p.read_text() != text]
    if differing and not options.force:
        raise InitError("these files exist and differ from what init would write: "
                        + ", ".join(str(p.relative_to(project)) for p in differing)
                        + "\nKeep them, or pass --force to overwrite them.")
    written, unchanged = [], []
    for path, text in files.items():
        if path.exists() and path.read_text() == text:
            unchanged.append(str(path.relative_to(project)))
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        written.append(str(path.relative_to(project)))
    return written, unchanged
