"""Dynamic providers `supabase:DatabaseEnvironment` (the database's own record of its tier,
which seeds check) and `supabase:Seed` (seed files below production, supagate/ops/seeds.py
does the work). A Seed on a production tier fails its check; the database refuses a seed
on a database marked production whatever the stack says."""

from __future__ import annotations

from typing import Any

import pulumi
from pulumi.dynamic import CheckFailure, CheckResult, DiffResult, ReadResult, Resource

from components.providers.database_rows import NamedRowProvider, connected, redacted
from supagate.offline.resource_types import engine_values


class DatabaseEnvironmentProvider(NamedRowProvider):
    @engine_values
    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        keys = ("tier", "project_ref", "db_url")
        return DiffResult(changes=any(olds.get(k) != news.get(k) for k in keys), replaces=[],
                          delete_before_replace=False)

    def _apply(self, props: dict[str, Any]) -> dict[str, Any]:
        def work(conn):
            conn.execute("insert into ops.environment (tier, project_ref) values (%s, %s) on conflict (id) do update "
                         "set tier = excluded.tier, project_ref = excluded.project_ref, set_at = now()",
                         (props["tier"], props["project_ref"]))
            return props

        return connected(props, work)

    @engine_values
    def delete(self, _id: str, _props: dict[str, Any]) -> None:
        pass  # the mark stays: a production database stays marked production


class SeedProvider(NamedRowProvider):
    @engine_values
    def check(self, _olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        if news.get("tier") not in ("staging", "development"):
            return CheckResult(news, [CheckFailure("tier", f"seed data never runs on a {news.get('tier')} tier")])
        return CheckResult(news, [])

    @engine_values
    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        def hashes(props):
            return {f["path"]: f["hash"] for f in props.get("files") or []}

        changed = hashes(olds) != hashes(news) or olds.get("db_url") != news.get("db_url") or bool(olds.get("drift"))
        return DiffResult(changes=changed, replaces=[], delete_before_replace=False)

    def _apply(self, props: dict[str, Any]) -> dict[str, Any]:
        from supagate.ops import seeds

        files = [seeds.SeedFile(f["path"], f["sql"]) for f in props.get("files") or []]
        return redacted(props["db_url"], lambda: {**props, "ran": seeds.apply(props["db_url"], files), "drift": []})

    @engine_values
    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        from supagate.ops import seeds

        def work(conn):
            done = seeds.recorded(conn)
            drift = [f"{f['path']}: the database recorded another version" for f in props.get("files") or []
                     if done.get(f["path"]) != f["hash"]]
            return {**props, "drift": drift}

        return ReadResult(id_, connected(props, work))

    @engine_values
    def delete(self, _id: str, _props: dict[str, Any]) -> None:
        pass  # seeded rows are data now: removing the resource leaves them


class DatabaseEnvironment(Resource, module="supabase", name="DatabaseEnvironment"):
    def __init__(self, name: str, props: dict[str, Any], opts: pulumi.ResourceOptions | None = None):
        opts = pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(additional_secret_outputs=["db_url"]))
        super().__init__(DatabaseEnvironmentProvider(), name, props, opts)


class Seed(Resource, module="supabase", name="Seed"):
    ran: pulumi.Output[list]

    def __init__(self, name: str, props: dict[str, Any], opts: pulumi.ResourceOptions | None = None):
        opts = pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(additional_secret_outputs=["db_url"]))
        super().__init__(SeedProvider(), name, {"ran": None, "drift": None, **props}, opts)
