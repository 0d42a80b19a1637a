"""What the providers of database-held objects (CronJob, AlertRule, AlertChannel) share:
one connection per call, errors redacted of the URL, and create/update that both apply
the desired state in place under the object's name (its id)."""

from __future__ import annotations

from typing import Any, Callable

from pulumi.dynamic import CreateResult, ResourceProvider, UpdateResult

from supagate.offline.resource_types import engine_values
from supagate.secrets import redact


def connected(props: dict[str, Any], work: Callable):
    from supagate.postgres.connect import connect

    def run():
        with connect(props["db_url"]) as conn:
            return work(conn)

    return redacted(props["db_url"], run)


def redacted(url: str, work: Callable):
    try:
        return work()
    except Exception as exc:
        # Never let the connection string reach the engine's logs.
        raise Exception(redact(str(exc), url)) from None


class NamedRowProvider(ResourceProvider):
    """Subclasses define `_apply(props) -> outputs`: idempotent, in place, never a recreate."""

    def _apply(self, props: dict[str, Any]) -> dict[str, Any]:
        raise NotImplementedError

    @engine_values
    def create(self, props: dict[str, Any]) -> CreateResult:
        return CreateResult(id_=props["name"], outs=self._apply(props))

    @engine_values
    def update(self, _id: str, _olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        return UpdateResult(outs=self._apply(news))
