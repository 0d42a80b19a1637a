"""Dynamic provider `supabase:Migrations`: runs supagate's migration engine on `pulumi up`.

Pickled by reference into the state (the engine's provider host imports this module from
the project root), so it holds nothing but code: each method opens its own connection.
Inputs carry every migration's SQL, so the policy pack can re-analyse what will run.
"""

from __future__ import annotations

from typing import Any

import pulumi
from pulumi.dynamic import (CheckResult, CreateResult, DiffResult, ReadResult, Resource, ResourceProvider,
                            UpdateResult)

from supagate.delivery import preflight
from supagate.migrations import runner
from supagate.migrations.history import applied_checksums, compare, read_history
from supagate.offline.resource_types import migrations_from_inputs
from supagate.secrets import redact
from supagate.offline.resource_types import engine_values


def _options(props: dict[str, Any]) -> runner.Options:
    return runner.Options(lock_timeout=props.get("lock_timeout") or "10s",
                          statement_timeout=props.get("statement_timeout") or "15min",
                          include_all=bool(props.get("include_all")), lock_wait=120.0)


def _applied_state(url: str, props: dict[str, Any]) -> dict[str, Any]:
    """What the database applied, with each row's effective checksum (a row the Supabase
    CLI wrote counts as its file's when the statements match), as the state keeps it."""
    from supagate.postgres.connect import connect

    with connect(url) as conn:
        history = read_history(conn)
    checksums = applied_checksums(history, migrations_from_inputs(props))
    return {"applied": [{"version": v, "name": row.name, "checksum": checksums[v]}
                        for v, row in sorted(history.items())],
            "applied_versions": sorted(history)}


def _recorded(props: dict[str, Any]) -> dict[str, str | None]:
    return {a["version"]: a.get("checksum") for a in props.get("applied") or []}


class MigrationsProvider(ResourceProvider):
    @engine_values
    def check(self, olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        """What the preview shows: the files new since this stack's last deploy, as an input
        (`pulumi.log` from a provider never reaches the engine's display)."""
        before = {m.get("version") for m in olds.get("migrations") or []}
        pending = [f"{m['version']}_{m['name']}.sql" for m in news.get("migrations") or []
                   if isinstance(m, dict) and m.get("version") not in before]
        return CheckResult({**news, "pending_migrations": pending}, [])

    @engine_values
    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        applied = _recorded(olds)
        comparison = compare(applied, migrations_from_inputs(news))
        # An edited applied file or a late new one stops the preview itself: `up` would
        # refuse anyway, and CI should say so first. Rows another tool applied without a
        # file of ours are `refresh`'s business (drift), not the preview's.
        problems = comparison.problems(bool(news.get("include_all")), allow_missing=True, applied=applied)
        if problems:
            raise Exception("failed to plan migrations: " + "\n".join(problems))
        settings_changed = any(olds.get(k) != news.get(k)
                               for k in ("db_url", "lock_timeout", "statement_timeout", "include_all"))
        return DiffResult(changes=bool(comparison.pending or settings_changed), replaces=[],
                          delete_before_replace=False)

    def _run(self, props: dict[str, Any]) -> dict[str, Any]:
        url = props["db_url"]
        try:
            checks = props.get("preflight")
            if checks:  # prod: stop before anything changes when the database is not ready
                preflight.require(url, preflight.Limits(**checks["limits"]), checks.get("api"))
            runner.migrate(url, migrations_from_inputs(props), _options(props), progress=lambda _: None)
            return {**props, **_applied_state(url, props), "drift": []}
        except Exception as exc:
            # Never let the connection string reach the engine's logs.
            raise Exception(redact(str(exc), url)) from None

    @engine_values
    def create(self, props: dict[str, Any]) -> CreateResult:
        return CreateResult(id_="migrations", outs=self._run(props))

    @engine_values
    def update(self, _id: str, _olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        return UpdateResult(outs=self._run(news))

    @engine_values
    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        url = props.get("db_url")
        if not url:
            return ReadResult(id_, props)
        try:
            state = _applied_state(url, props)
        except Exception as exc:
            raise Exception(redact(str(exc), url)) from None
        live = {a["version"]: a["checksum"] for a in state["applied"]}
        comparison = compare(live, migrations_from_inputs(props))
        drift = sorted([f"{v}: applied outside this stack" for v in comparison.missing]
                       + [f"{m.version}: checksum changed" for m in comparison.edited]
                       + [f"{v}: no longer applied" for v in _recorded(props) if v not in live])
        return ReadResult(id_, {**props, **state, "drift": drift})

    @engine_values
    def delete(self, _id: str, _props: dict[str, Any]) -> None:
        # Deleting the resource must never drop data: the schema stays as it is.
        pulumi.log.warn("supabase:Migrations removed from the stack; the database was left as it is")


class Migrations(Resource, module="supabase", name="Migrations"):
    applied_versions: pulumi.Output[list]
    applied: pulumi.Output[list]
    drift: pulumi.Output[list]

    def __init__(self, name: str, props: dict[str, Any], opts: pulumi.ResourceOptions | None = None):
        opts = pulumi.ResourceOptions.merge(
            opts, pulumi.ResourceOptions(additional_secret_outputs=["db_url", "preflight"]))
        super().__init__(MigrationsProvider(), name,
                         {"applied_versions": None, "applied": None, "drift": None, **props}, opts)
