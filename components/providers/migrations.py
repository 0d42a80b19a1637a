"""Dynamic provider `supabase:Migrations`: runs supagate's migration engine on `pulumi up`.

Pickled by reference into the state (the engine's provider host imports this module from
the project root), so it holds nothing but code: each method opens its own connection.
Inputs carry every migration's SQL, so the policy pack can re-analyse what will run.
"""

from __future__ import annotations

from typing import Any

import pulumi
from pulumi.dynamic import CreateResult, DiffResult, ReadResult, Resource, ResourceProvider, UpdateResult

from supagate import engine, preflight
from supagate.db import redact
from supagate.resource_types import migrations_from_inputs


def _options(props: dict[str, Any]) -> engine.Options:
    return engine.Options(lock_timeout=props.get("lock_timeout") or "10s",
                          statement_timeout=props.get("statement_timeout") or "15min",
                          include_all=bool(props.get("include_all")), lock_wait=120.0)


def _applied_state(url: str) -> dict[str, Any]:
    from supagate.db import connect

    with connect(url) as conn:
        history = engine.read_history(conn)
    return {"applied": [{"version": v, "name": row.name, "checksum": row.checksum}
                        for v, row in sorted(history.items())],
            "applied_versions": sorted(history)}


class MigrationsProvider(ResourceProvider):
    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        applied = {a["version"]: a.get("checksum") for a in olds.get("applied") or []}
        wanted = {m["version"]: m["checksum"] for m in news.get("migrations") or []}
        pending = [v for v in wanted if v not in applied]
        edited = [v for v, c in wanted.items() if v in applied and applied[v] not in (None, c)]
        settings_changed = any(olds.get(k) != news.get(k)
                               for k in ("db_url", "lock_timeout", "statement_timeout", "include_all"))
        changed = bool(pending or edited or settings_changed)
        late = [v for v in pending if v < max(applied, default="")] if not news.get("include_all") else []
        if edited or late:
            # Stop the preview itself: `up` would refuse anyway, and CI should say so first.
            problems = [f"applied migrations whose file changed: {', '.join(sorted(edited))} (restore the files, "
                        "or accept them with `supagate migrate --repair VERSION` and then `pulumi refresh`)"
                        ] if edited else []
            problems += [f"new migrations older than the newest applied one: {', '.join(sorted(late))} (give them "
                         "a newer timestamp)"] if late else []
            raise Exception("failed to plan migrations: " + "; ".join(problems))
        if pending:
            pulumi.log.info(f"pending migrations: {', '.join(sorted(pending))}")
        return DiffResult(changes=changed, replaces=[], delete_before_replace=False)

    def _run(self, props: dict[str, Any]) -> dict[str, Any]:
        url = props["db_url"]
        try:
            checks = props.get("preflight")
            if checks:  # prod: stop before anything changes when the database is not ready
                preflight.require(url, preflight.Limits(**checks["limits"]), checks.get("api"))
            engine.migrate(url, migrations_from_inputs(props), _options(props), progress=pulumi.log.info)
            return {**props, **_applied_state(url), "drift": []}
        except Exception as exc:
            # Never let the connection string reach the engine's logs.
            raise Exception(redact(str(exc), url)) from None

    def create(self, props: dict[str, Any]) -> CreateResult:
        return CreateResult(id_="migrations", outs=self._run(props))

    def update(self, _id: str, _olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        return UpdateResult(outs=self._run(news))

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        url = props.get("db_url")
        if not url:
            return ReadResult(id_, props)
        try:
            state = _applied_state(url)
        except Exception as exc:
            raise Exception(redact(str(exc), url)) from None
        recorded = {a["version"]: a.get("checksum") for a in props.get("applied") or []}
        live = {a["version"]: a.get("checksum") for a in state["applied"]}
        drift = sorted(
            [f"{v}: applied outside this stack" for v in live if v not in recorded]
            + [f"{v}: no longer applied" for v in recorded if v not in live]
            + [f"{v}: checksum changed" for v in live if v in recorded and live[v] != recorded[v]])
        return ReadResult(id_, {**props, **state, "drift": drift})

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
