"""Dynamic provider `supabase:RateLimitPolicy`: one row of ops.rate_limit_policies, which
the functions' shared limiter reads on every request (a limit change needs no redeploy)."""

from __future__ import annotations

from typing import Any

import pulumi
from pulumi.dynamic import DiffResult, Resource

from components.providers.database_rows import NamedRowProvider, connected
from supagate.offline.resource_types import engine_values

_KEYS = ("max_requests", "window_seconds", "key_by", "probe", "db_url")


class RateLimitPolicyProvider(NamedRowProvider):
    @engine_values
    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        replaces = ["name"] if olds.get("name") != news.get("name") else []
        return DiffResult(changes=any(olds.get(k) != news.get(k) for k in _KEYS) or bool(replaces),
                          replaces=replaces, delete_before_replace=True)

    def _apply(self, props: dict[str, Any]) -> dict[str, Any]:
        def work(conn):
            conn.execute("insert into ops.rate_limit_policies (function, max_requests, window_seconds, key_by, probe) "
                         "values (%s, %s, %s, %s, %s) on conflict (function) do update set "
                         "max_requests = excluded.max_requests, window_seconds = excluded.window_seconds, "
                         "key_by = excluded.key_by, probe = excluded.probe",
                         (props["name"], props["max_requests"], props["window_seconds"], props["key_by"],
                          bool(props["probe"])))
            return props

        return connected(props, work)

    @engine_values
    def delete(self, _id: str, props: dict[str, Any]) -> None:
        connected(props, lambda conn: conn.execute("delete from ops.rate_limit_policies where function = %s",
                                                   (props["name"],)))


class RateLimitPolicy(Resource, module="supabase", name="RateLimitPolicy"):
    def __init__(self, name: str, props: dict[str, Any], opts: pulumi.ResourceOptions | None = None):
        opts = pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(additional_secret_outputs=["db_url"]))
        super().__init__(RateLimitPolicyProvider(), name, props, opts)
