"""Whose code, and whose input, each workflow file runs: decided by its triggers, fail closed.

- MAIN: only what is on main, started by GitHub or by a merge: `schedule`, and `push` whose
  branch filter is exactly [main] (and no tag filter).
- ANY_REF: code from a ref a writer picks: `workflow_dispatch` (any branch or tag), `push` of
  tags, a reusable workflow no workflow here calls. A secret or an environment there is
  safe only in an environment whose branch policy admits main alone (and tags only the
  release-tags ruleset guards): GitHub then refuses any other ref.
- UNREVIEWED: everything else. A pull request's code (`pull_request*`, `merge_group`), a push
  to any other branch (that branch's own workflow runs), input from anyone (`issues`,
  `issue_comment`, `discussion*`, `repository_dispatch`, ...), and every `workflow_run`: it
  matches its upstream by name, and a pull request can add a workflow of any name (or none:
  GitHub then names it by its path), so no upstream list is an identity. Events this
  module does not know are here too.

A reusable workflow runs with the reach of the worst workflow that calls it, by local path
or by full name (`owner/repo/.github/workflows/x.yml@ref` may name this repository).
"""

from __future__ import annotations

from enum import IntEnum
from typing import Any


class Reach(IntEnum):
    MAIN = 0
    ANY_REF = 1
    UNREVIEWED = 2


PULL_REQUEST_EVENTS = ("pull_request", "pull_request_target", "pull_request_review", "pull_request_review_comment")


def triggers(document: dict) -> dict[str, Any]:
    on = document.get("on")
    if isinstance(on, str):
        return {on: None}
    if isinstance(on, list):
        return {str(event): None for event in on}
    return {str(k): v for k, v in on.items()} if isinstance(on, dict) else {}


def _event(event: str, value: Any) -> tuple[Reach, str]:
    if event == "schedule":
        return Reach.MAIN, ""
    if event == "workflow_dispatch":
        return Reach.ANY_REF, "workflow_dispatch can run it from any branch or tag"
    if event == "push":
        return _push(value)
    if event in PULL_REQUEST_EVENTS or event == "merge_group":
        return Reach.UNREVIEWED, "a pull request can start it"
    if event == "workflow_run":
        return Reach.UNREVIEWED, ("workflow_run can start it after a pull request's run (a pull request can name a "
                                  "workflow anything)")
    return Reach.UNREVIEWED, f"{event} can start it (code or input nobody reviewed)"


def _push(value: Any) -> tuple[Reach, str]:
    """Branches: exactly [main]; tags: any filter makes it ANY_REF (the environment decides)."""
    anything = (Reach.UNREVIEWED, "a push to any branch can start it (that branch's own workflow runs)")
    if not isinstance(value, dict) or value.keys() & {"branches-ignore", "tags-ignore"}:
        return anything
    if "branches" not in value and "tags" not in value:
        return anything
    if "branches" in value and value["branches"] != ["main"]:
        return anything
    if "tags" in value:
        return Reach.ANY_REF, "a tag push can run the tagged commit"
    return Reach.MAIN, ""


def called(job: Any) -> str | None:
    """The file name a job's reusable-workflow call names, if it is one."""
    uses = job.get("uses") if isinstance(job, dict) else None
    if not isinstance(uses, str) or "/.github/workflows/" not in uses and not uses.startswith(".github/workflows/"):
        return None
    return uses.split("@", 1)[0].rsplit("/", 1)[-1]


def reach(documents: dict[str, dict]) -> dict[str, tuple[Reach, str]]:
    """file -> (reach, why) for every document."""
    callers: dict[str, set[str]] = {name: set() for name in documents}
    for name, document in documents.items():
        for job in (document.get("jobs") or {}).values() if isinstance(document.get("jobs"), dict) else ():
            callee = called(job)
            if callee in documents:
                callers[callee].add(name)
    result: dict[str, tuple[Reach, str]] = {}
    for name, document in documents.items():
        events = triggers(document)
        worst = (Reach.UNREVIEWED, "it has no trigger GitHub would run") if not events else (Reach.MAIN, "")
        for event, value in events.items():
            if event == "workflow_call":
                found = (Reach.MAIN, "") if callers[name] else (Reach.ANY_REF, "any workflow can call it")
            else:
                found = _event(event, value)
            worst = max(worst, found, key=lambda r: r[0])
        result[name] = worst
    changed = True
    while changed:  # a callee is as exposed as its most exposed caller
        changed = False
        for callee, names in callers.items():
            for caller in names:
                if result[caller][0] > result[callee][0]:
                    result[callee] = (result[caller][0], f"{result[caller][1]} (through {caller})")
                    changed = True
    return result
