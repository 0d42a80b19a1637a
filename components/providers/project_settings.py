"""Dynamic provider `supabase:ProjectSettings`: the declared project settings, one area
per Management API endpoint (supagate/supabase_api/project_settings.py does the work).

create and update read the project first and send only the declared keys that differ,
so adopting an existing project never clobbers it; read reports drift on declared keys
only; delete leaves the project as it is.
"""

from __future__ import annotations

from typing import Any

import pulumi
from pulumi.dynamic import (CheckFailure, CheckResult, CreateResult, DiffResult, ReadResult, Resource,
                            ResourceProvider, UpdateResult)

from supagate.supabase_api import project_settings as settings_api
from supagate.supabase_api.client import from_inputs
from supagate.offline.resource_types import engine_values

def _desired(props: dict[str, Any]) -> dict[str, Any]:
    return {area: props[area] for area in settings_api.AREAS if props.get(area) is not None}


class ProjectSettingsProvider(ResourceProvider):
    @engine_values
    def check(self, olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        """Changing a parameter that restarts the database, when that is not allowed, fails the
        preview itself (a first deploy compares with the project instead, when it applies)."""
        before = _desired(olds).get("postgres") or {}
        changed = settings_api.changes({"postgres": before}, {"postgres": {k: v for k, v in (_desired(news).get(
            "postgres") or {}).items() if k in before}})  # a key declared before and changed since
        restart = settings_api.restarts(changed)
        if restart and not news.get("allow_restart"):
            return CheckResult(news, [CheckFailure("postgres", (
                f"postgres {', '.join(restart)} only take effect after a database restart; set allowRestart: true "
                "for this stack (and pick a quiet hour), or leave them as they are"))])
        return CheckResult(news, [])

    @engine_values
    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        found = settings_api.changes(_desired(olds), _desired(news))
        replaces = ["project_ref"] if olds.get("project_ref") != news.get("project_ref") else []
        connection = [k for k in ("api_url", "allow_restart") if olds.get(k) != news.get(k)]
        return DiffResult(changes=bool(found or replaces or connection), replaces=replaces,
                          delete_before_replace=False)

    def _apply(self, props: dict[str, Any]) -> dict[str, Any]:
        desired = _desired(props)
        with from_inputs(props) as api:
            current = settings_api.read_current(api, props["project_ref"], desired)
            found = settings_api.changes(current, desired)
            settings_api.apply(api, props["project_ref"], desired, found, bool(props.get("allow_restart")),
                               health_timeout=float(props.get("health_timeout") or 300),
                               health_interval=float(props.get("health_interval") or 5))
        return props

    @engine_values
    def create(self, props: dict[str, Any]) -> CreateResult:
        return CreateResult(id_=props["project_ref"], outs=self._apply(props))

    @engine_values
    def update(self, _id: str, _olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        return UpdateResult(outs=self._apply(news))

    @engine_values
    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        with from_inputs(props) as api:
            current = settings_api.read_current(api, props["project_ref"], _desired(props))
        return ReadResult(id_, {**props, **current})

    @engine_values
    def delete(self, _id: str, _props: dict[str, Any]) -> None:
        pulumi.log.warn("supabase:ProjectSettings removed from the stack; the project keeps its settings")


class ProjectSettings(Resource, module="supabase", name="ProjectSettings"):
    def __init__(self, name: str, props: dict[str, Any], opts: pulumi.ResourceOptions | None = None):
        opts = pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(additional_secret_outputs=["access_token"]))
        super().__init__(ProjectSettingsProvider(), name, props, opts)
