"""Project settings through the Management API, one area per endpoint.

Only what the stack declares is managed: the desired state holds the keys the stack file
sets, diff and read compare only those, and an update sends only those. Nothing
undeclared is read into the state or sent. Deleting the resource leaves the project as it
is. Postgres parameters that restart the database are named in the diff and refused
unless `allowRestart` is true.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

from supagate.errors import Failed
from supagate.supabase_api.areas import AREAS, RESTART_PARAMETERS
from supagate.supabase_api.client import ApiError

if TYPE_CHECKING:
    from supagate.config.models import Settings
    from supagate.supabase_api.client import ManagementApi


class SettingsApplyError(Failed):
    pass


def desired_state(settings: "Settings") -> dict[str, Any]:
    """The declared areas, in the API's own key names (only keys the stack file sets)."""
    state = {name: area.desired(settings) for name, area in AREAS.items()}
    return {name: value for name, value in state.items() if value is not None and value != {}}


# ---------------------------------------------------------------- comparing

def changes(current: dict[str, Any], desired: dict[str, Any]) -> dict[str, dict[str, tuple[Any, Any]]]:
    """area -> {key: (current, desired)} for the declared keys whose values differ."""
    found: dict[str, dict[str, tuple[Any, Any]]] = {}
    for area, wanted in desired.items():
        have = current.get(area)
        if not isinstance(wanted, dict):
            if have != wanted:
                found[area] = {area: (have, wanted)}
            continue
        have = have if isinstance(have, dict) else {}
        differing = {k: (have.get(k), v) for k, v in wanted.items() if _normal(have.get(k)) != _normal(v)}
        if differing:
            found[area] = differing
    return found


def _normal(value: Any) -> Any:
    return sorted(value) if isinstance(value, list) else value


def restarts(found: dict[str, dict[str, tuple[Any, Any]]]) -> list[str]:
    return sorted(k for k in found.get("postgres", {}) if k in RESTART_PARAMETERS)


def describe(found: dict[str, dict[str, tuple[Any, Any]]]) -> list[str]:
    lines = []
    for area, keys in sorted(found.items()):
        for key, (old, new) in sorted(keys.items()):
            name = area if key == area else f"{area}.{key}"
            note = " (restarts the database)" if area == "postgres" and key in RESTART_PARAMETERS else ""
            lines.append(f"{name}: {old!r} -> {new!r}{note}")
    return lines


# ---------------------------------------------------------------- remote state

def read_current(api: "ManagementApi", ref: str, desired: dict[str, Any]) -> dict[str, Any]:
    """The project's values for the declared keys only."""
    base = f"/v1/projects/{ref}"
    return {name: AREAS[name].read(api, base, wanted) for name, wanted in desired.items()}


def apply(api: "ManagementApi", ref: str, desired: dict[str, Any], found: dict[str, dict[str, tuple[Any, Any]]],
          allow_restart: bool, log: Callable[[str], None] = lambda _: None, health_timeout: float = 300.0,
          health_interval: float = 5.0) -> None:
    """Send the changed areas (only their declared keys), after the services they touch
    report healthy. A restart that is not allowed stops everything before a request."""
    if not found:
        return
    needs_restart = restarts(found)
    if needs_restart and not allow_restart:
        raise SettingsApplyError(
            f"failed to change project {ref}: postgres {', '.join(needs_restart)} only take effect after a "
            "database restart\nSet allowRestart: true for this stack (and pick a quiet hour), or leave them as "
            "they are. Nothing was changed.")
    services = sorted({s for name in found for s in AREAS[name].services})
    api.wait_healthy(ref, services, timeout=health_timeout, interval=health_interval)
    base, done = f"/v1/projects/{ref}", []
    for name, area in AREAS.items():
        if name not in found:
            continue
        log(f"updating {name}: " + "; ".join(describe({name: found[name]})))

        def applied(name=name, area=area) -> bool:  # a lost answer: did the write take effect?
            return not changes({name: area.read(api, base, desired[name])}, {name: desired[name]})

        try:
            area.write(api, base, desired[name], bool(needs_restart), applied)
        except ApiError as exc:
            pending = [n for n in AREAS if n in found and n not in done]
            raise SettingsApplyError(
                f"failed to change project {ref}: {str(exc).splitlines()[0]}\n"
                f"Applied: {', '.join(done) or 'nothing'}. Not applied: {', '.join(pending)}. "
                "Run again: only what differs is sent.") from None
        done.append(name)
