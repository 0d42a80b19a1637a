"""A static check of GitHub workflow files (parsed YAML, never text matching):

- a job that unreviewed code or input can start (supagate/delivery/workflow_triggers.py:
  pull requests, pushes to other branches, workflow_run, issues, ...) names no environment,
  reads no secret but GITHUB_TOKEN and calls no reusable workflow it cannot read;
- a job a writer can start on any ref (workflow_dispatch, tag pushes) holds a secret or an
  environment only through an environment the stacks keep to main;
- every other secret is read only in a job that names an environment holding it, so none
  is a repository secret;
- every action and reusable workflow is pinned by a full commit SHA, also inside the local
  composite actions a job uses (whose action.yml must be readable);
- an artifact from a job holding an environment carries only age-encrypted files and row
  counts, and the age recipients come from the environment's SNAPSHOT_RECIPIENTS variable,
  never from the repository (supagate/delivery/snapshot_rules.py);
- every job that deploys to production first needs the generator's on-main job, unchanged,
  in a workflow with no `defaults` or `env` that could reach its shell.

Names are compared as GitHub compares them: contexts, secrets, variables and environments
case-insensitively. `supagate workflows` runs it over every file in .github/workflows; the
tests run it over the generated ones. GitHub's environment branch policies are what keeps
secrets from unreviewed code; this check keeps the workflows from ever needing a way around them.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass
from typing import Any, Callable

import yaml

from supagate.delivery.snapshot_rules import snapshot_problems
from supagate.delivery.workflow_expressions import EVERY, context_reads
from supagate.delivery.workflow_triggers import Reach, called, reach
from supagate.delivery.workflows import release_on_main_job

PINNED = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+(/[^@]*)?@[0-9a-f]{40}$")
PINNED_DOCKER = re.compile(r"^docker://[^@]+@sha256:[0-9a-f]{64}$")
STATUS_FUNCTION = re.compile(r"\b(always|failure|cancelled)\s*\(\s*\)", re.IGNORECASE)
Reader = Callable[[str], "str | None"]  # repository-relative path -> text, None when absent


@dataclass(frozen=True)
class Problem:
    file: str
    job: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}: job {self.job}: {self.message}" if self.job else f"{self.file}: {self.message}"


class _NoDuplicateKeys(yaml.SafeLoader):
    """GitHub refuses a mapping that repeats a key; PyYAML would keep the last one silently
    (`on: pull_request` then `on: push` would be audited as push only)."""

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            key = "on" if key is True else key  # YAML 1.1 reads `on` as true; GitHub as "on"
            if isinstance(key, (str, int, float, bool)) and key in seen:
                raise yaml.constructor.ConstructorError(None, None, f"key {key!r} appears twice",
                                                        key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep)


def load(text: str) -> dict:
    """PyYAML reads the key `on` as True (YAML 1.1); GitHub reads it as "on"."""
    document = yaml.load(text, Loader=_NoDuplicateKeys)  # a SafeLoader: no object construction
    if not isinstance(document, dict):
        raise ValueError("not a workflow: the file is not a YAML mapping")
    return {("on" if k is True else k): v for k, v in document.items()}


def audit(files: dict[str, str], held: dict[str, set[str]], production: str,
          kept_to_main: set[str] | frozenset[str] = frozenset(), read: Reader | None = None) -> list[Problem]:
    """`files`: file name -> YAML text. `held`: environment -> the secrets it holds.
    `production`: the environment whose jobs must first prove the commit is on main.
    `kept_to_main`: environments whose branch policy admits only main (and guarded tags).
    `read`: reads a file of the repository (local actions); without it none is readable."""
    problems: list[Problem] = []
    documents: dict[str, dict] = {}
    for name, text in files.items():
        try:
            documents[name] = load(text)
        except (yaml.YAMLError, ValueError) as exc:
            problems.append(Problem(name, "", f"cannot be read ({exc}); fix the YAML"))
    rules = _Rules(documents, {e.lower(): {s.upper() for s in names} for e, names in held.items()},
                   {e.lower() for e in kept_to_main}, production.lower(), read or (lambda _: None))
    reaches = reach(documents)
    for name, document in documents.items():
        jobs = document.get("jobs") if isinstance(document.get("jobs"), dict) else {}
        for job_id, job in jobs.items():
            if not isinstance(job, dict):
                problems.append(Problem(name, job_id, "is not a mapping; fix the YAML"))
                continue
            problems += [Problem(name, job_id, m) for m in _job(rules, document, job_id, reaches[name])]
    return problems


@dataclass(frozen=True)
class _Rules:
    """What every job is judged against (names lower-cased as GitHub compares them)."""
    documents: dict[str, dict]
    held: dict[str, set[str]]
    kept: set[str]
    production: str
    read: Reader


def _job(rules: _Rules, document: dict, job_id: str, exposure: tuple[Reach, str]) -> list[str]:
    job = document["jobs"][job_id]
    uses, actions, problems = _uses(job, rules.read)
    problems += [f"uses {u}{where} without a full commit SHA: pin it as owner/repo@<40 hex> # vX.Y.Z"
                 for u, where in uses if not (PINNED.match(u) or PINNED_DOCKER.match(u))]
    raw = job.get("environment")
    raw = raw.get("name") if isinstance(raw, dict) else raw
    if raw is not None and (not isinstance(raw, str) or "${{" in raw):
        return problems + [f"names its environment with an expression ({raw!r}): the audit cannot tell which, "
                           "and GitHub would pick one at run time; name it literally"]
    environment = raw.lower() if raw else None
    secrets = context_reads({"env": document.get("env"), "job": job}, "secrets") | \
        context_reads(actions, "secrets")
    if str(job.get("secrets")).lower() == "inherit":
        secrets.add(EVERY)
    secrets.discard("GITHUB_TOKEN")
    level, why = exposure
    if level == Reach.UNREVIEWED:
        if environment:
            problems.append(f"{why} and it names environment {raw}: move the job to a workflow that runs after "
                            "review (push to main, a release tag)")
        if secrets:
            problems.append(f"{why} and it reads {', '.join(sorted(secrets))}: the code or input would reach them "
                            "before any review")
        callee = called(job)
        if callee and (not job["uses"].startswith("./.github/workflows/") or callee not in rules.documents):
            problems.append(f"{why} and it calls {job['uses']}, which the audit cannot read (it may name an "
                            "environment): call a workflow of .github/workflows/ by its local path")
        return problems
    if level == Reach.ANY_REF and (environment or secrets) and environment not in rules.kept:
        where = f"environment {raw} admits other branches or unguarded tags" if environment else \
            "it names no environment"
        problems.append(f"{why}, and {where}: name an environment the stacks keep to main "
                        f"({', '.join(sorted(rules.kept)) or 'none configured'})")
    outside = sorted(s for s in secrets if s not in rules.held.get(environment or "", set()))
    if outside:
        where = f"environment {raw}" if environment else "no environment"
        problems.append(f"reads {', '.join(outside)} in {where}, so from the repository (readable by every "
                        "branch): make it a secret of the environment the job names")
    if environment:
        problems += snapshot_problems(document, job, environment in rules.kept)
        problems += [f"checks out {what} in a job of environment {raw}: the environment's branch policy (and the "
                     "on-main check) vouch only for the commit the run is for; check that one out"
                     for what in _other_checkouts(job)]
    if environment == rules.production:
        problems += _on_main_first(document, document["jobs"], job_id, rules.production)
    return problems


def _uses(job: dict, read: Reader) -> tuple[list[tuple[str, str]], list[Any], list[str]]:
    """Every remote `uses` of the job and of the local composite actions it runs (their
    action.yml read through `read`) with where it is, the parsed local actions, and what
    could not be read."""
    remote = [(job["uses"], "")] if isinstance(job.get("uses"), str) and not job["uses"].startswith("./") else []
    steps = [s for s in job.get("steps") or () if isinstance(s, dict) and isinstance(s.get("uses"), str)]
    pending = [(s["uses"], "") for s in steps]
    actions: list[Any] = []
    problems: list[str] = []
    seen: set[str] = set()
    while pending:
        uses, inside = pending.pop(0)
        where = f" (in {inside})" if inside else ""
        if not uses.startswith("./"):
            remote.append((uses, where))
            continue
        path = posixpath.normpath(uses[2:])
        if path in seen:
            continue
        seen.add(path)
        text = None if path.startswith(("..", "/")) else \
            read(f"{path}/action.yml") or read(f"{path}/action.yaml")
        try:
            action = load(text) if text else None
        except (yaml.YAMLError, ValueError):
            action = None
        if not isinstance(action, dict) or not isinstance(action.get("runs"), dict):
            problems.append(f"uses {uses}{where}, whose action.yml the audit cannot read: it cannot see what the "
                            "action runs; keep it in this repository, or inline its steps")
            continue
        actions.append(action)
        runs = action["runs"]
        if runs.get("using") == "docker" and str(runs.get("image", "")).startswith("docker://"):
            remote.append((runs["image"], f" (in {uses})"))
        for step in runs.get("steps") or () if runs.get("using") == "composite" else ():
            if isinstance(step, dict) and isinstance(step.get("uses"), str):
                pending.append((step["uses"], uses))
    return remote, actions, problems


def _other_checkouts(job: dict) -> list[str]:
    """actions/checkout steps that fetch another ref or repository than the run's."""
    found = []
    for step in job.get("steps") or ():
        uses = step.get("uses") if isinstance(step, dict) else None
        if isinstance(uses, str) and uses.lower().startswith("actions/checkout@"):
            inputs = step.get("with") if isinstance(step.get("with"), dict) else {}
            found += [f"{key} {inputs[key]!r}" for key in ("ref", "repository") if key in inputs]
    return found


def _on_main_first(document: dict, jobs: dict, job_id: str, production: str) -> list[str]:
    check = _on_main_check(jobs, job_id)
    if check is None:
        return [f"deploys to {production} without first needing a job that checks the commit is on main "
                "(supagate's release-on-main job exactly as generated)"]
    reaching = [key for key in ("defaults", "env") if key in document]
    if reaching:
        return [f"its workflow sets {' and '.join(reaching)}, which reach the on-main check's shell (a default "
                "shell of `true {0}` makes it a no-op): remove them, set them per job"]
    # always(), failure() and cancelled() run a job even when a job it needs failed.
    condition = str(jobs[job_id].get("if", ""))
    if STATUS_FUNCTION.search(condition) and not re.search(
            rf"needs\.{re.escape(check)}\.result\s*==\s*'success'", condition):
        return [f"its if ({condition}) can run it after {check} failed: add && needs.{check}.result == 'success'"]
    return []


def _on_main_check(jobs: dict, job_id: str) -> str | None:
    """A job this one needs (directly or not) that is the generator's on-main job, exactly:
    any other step before the check (`git update-ref`), a `shell`, an `if`, `continue-on-error`,
    a container or another checkout could make it prove nothing."""
    expected = yaml.safe_load(yaml.safe_dump(release_on_main_job()))
    seen, todo = set(), list(_needs(jobs.get(job_id)))
    while todo:
        need = todo.pop()
        if need in seen or not isinstance(jobs.get(need), dict):
            continue
        seen.add(need)
        todo += _needs(jobs[need])
        if jobs[need] == expected:
            return need
    return None


def _needs(job: Any) -> list[str]:
    needs = job.get("needs", []) if isinstance(job, dict) else []
    return [needs] if isinstance(needs, str) else list(needs)
