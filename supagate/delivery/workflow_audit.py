"""A static check of GitHub workflow files (parsed YAML, never text matching):

- no job that a pull request can start (`pull_request*`, `issue_comment`, and whatever
  `workflow_run` or a reusable-workflow call chains from them) names an environment or
  reads a secret other than GITHUB_TOKEN;
- every other secret is read only in a job that names an environment holding it, so none
  is a repository secret;
- every action and reusable workflow is pinned by a full commit SHA (local ones aside);
- every job that deploys to production first needs a job that proves the commit is on main.

`supagate workflows` runs it over every file in .github/workflows; the tests run it over
the generated ones. GitHub's environment branch policies are what keeps secrets from
unreviewed code; this check keeps the workflows from ever needing a way around them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Iterator

import yaml

from supagate.delivery.workflows import ON_MAIN_SCRIPT

# Events that run on behalf of someone who may not have been reviewed: the PR's author
# (pull_request*), anyone who comments (issue_comment).
UNTRUSTED_EVENTS = {"pull_request", "pull_request_target", "pull_request_review", "pull_request_review_comment",
                    "issue_comment"}
EXPRESSION = re.compile(r"\$\{\{(.*?)\}\}", re.DOTALL)
# secrets.NAME, secrets['NAME'], or the whole context (toJSON(secrets), secrets[format(...)]).
SECRET_USE = re.compile(r"\bsecrets\b(?:\s*\.\s*([A-Za-z_][A-Za-z0-9_]*)|\s*\[\s*'([^']*)'\s*\])?")
EVERY_SECRET = "every secret"
PINNED = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+(/[^@]*)?@[0-9a-f]{40}$")
PINNED_DOCKER = re.compile(r"^docker://[^@]+@sha256:[0-9a-f]{64}$")
STATUS_FUNCTION = re.compile(r"\b(always|failure|cancelled)\s*\(\s*\)", re.IGNORECASE)


@dataclass(frozen=True)
class Problem:
    file: str
    job: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}: job {self.job}: {self.message}" if self.job else f"{self.file}: {self.message}"


def load(text: str) -> dict:
    """PyYAML reads the key `on` as True (YAML 1.1); GitHub reads it as "on"."""
    document = yaml.safe_load(text)
    if not isinstance(document, dict):
        raise ValueError("not a workflow: the file is not a YAML mapping")
    return {("on" if k is True else k): v for k, v in document.items()}


def audit(files: dict[str, str], held: dict[str, set[str]], production: str) -> list[Problem]:
    """`files`: file name -> YAML text. `held`: environment -> the secrets it holds.
    `production`: the environment whose jobs must first prove the commit is on main."""
    problems: list[Problem] = []
    documents: dict[str, dict] = {}
    for name, text in files.items():
        try:
            documents[name] = load(text)
        except (yaml.YAMLError, ValueError) as exc:
            problems.append(Problem(name, "", f"cannot be read ({exc}); fix the YAML"))
    untrusted = _reachable_from_pull_requests(documents)
    for name, document in documents.items():
        jobs = document.get("jobs") or {}
        for job_id, job in jobs.items():
            job = job if isinstance(job, dict) else {}
            problems += [Problem(name, job_id, m) for m in _unpinned(job)]
            environment = _environment(job)
            secrets = _secrets({"env": document.get("env"), "job": job})
            if name in untrusted:
                if environment:
                    problems.append(Problem(name, job_id, f"a pull request can start it and it names environment "
                                                          f"{environment}: move the job to a workflow that runs "
                                                          "after review (push to main, a release tag)"))
                if secrets:
                    problems.append(Problem(name, job_id, "a pull request can start it and it reads "
                                                          f"{', '.join(sorted(secrets))}: the branch's code would "
                                                          "hold them before any review"))
                continue
            outside = sorted(s for s in secrets if s not in held.get(environment or "", set()))
            if outside:
                where = f"environment {environment}" if environment else "no environment"
                problems.append(Problem(name, job_id, f"reads {', '.join(outside)} in {where}, so from the repository "
                                                      "(readable by every branch): make it a secret of the "
                                                      "environment the job names"))
            if environment == production:
                problems += [Problem(name, job_id, m) for m in _on_main_first(jobs, job_id, production)]
    return problems


def _triggers(document: dict) -> dict[str, Any]:
    on = document.get("on") or {}
    if isinstance(on, str):
        return {on: None}
    if isinstance(on, list):
        return {event: None for event in on}
    return on if isinstance(on, dict) else {}


def _reachable_from_pull_requests(documents: dict[str, dict]) -> set[str]:
    """Files a pull request can start, directly or through workflow_run / a reusable call."""
    reached = {name for name, d in documents.items() if UNTRUSTED_EVENTS & set(_triggers(d))}
    while True:
        names = {documents[n].get("name", n) for n in reached} | reached
        more = set()
        for name, document in documents.items():
            run = _triggers(document).get("workflow_run")
            if name not in reached and isinstance(run, dict) and set(run.get("workflows") or ()) & names:
                more.add(name)
        for name in reached:
            for job in (documents[name].get("jobs") or {}).values():
                called = job.get("uses", "") if isinstance(job, dict) else ""
                if called.startswith("./.github/workflows/") and called.rsplit("/", 1)[-1] in documents:
                    more.add(called.rsplit("/", 1)[-1])
        if more <= reached:
            return reached
        reached |= more


def _environment(job: dict) -> str | None:
    environment = job.get("environment")
    return environment.get("name") if isinstance(environment, dict) else environment


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _strings(key)
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def _secrets(value: Any) -> set[str]:
    """The secrets a part of a workflow reads: names, or EVERY_SECRET for the whole context
    (`toJSON(secrets)`, a computed name) and for `secrets: inherit`."""
    found = {a or b or EVERY_SECRET for text in _strings(value) for expression in EXPRESSION.findall(text)
             for a, b in SECRET_USE.findall(expression)}
    if isinstance(value, dict) and any(isinstance(job, dict) and job.get("secrets") == "inherit"
                                       for job in value.values()):
        found.add(EVERY_SECRET)
    return found - {"GITHUB_TOKEN"}


def _unpinned(job: dict) -> list[str]:
    uses = [job["uses"]] if isinstance(job.get("uses"), str) else []
    uses += [s["uses"] for s in job.get("steps") or () if isinstance(s, dict) and isinstance(s.get("uses"), str)]
    return [f"uses {u} without a full commit SHA: pin it as owner/repo@<40 hex> # vX.Y.Z" for u in uses
            if not (u.startswith("./") or PINNED.match(u) or PINNED_DOCKER.match(u))]


def _on_main_first(jobs: dict, job_id: str, production: str) -> list[str]:
    check = _on_main_check(jobs, job_id)
    if check is None:
        return [f"deploys to {production} without first needing a job that checks the commit is on main "
                "(supagate's on-main script unchanged, no if, no continue-on-error)"]
    # always(), failure() and cancelled() run a job even when a job it needs failed.
    condition = str(jobs[job_id].get("if", ""))
    if STATUS_FUNCTION.search(condition) and not re.search(
            rf"needs\.{re.escape(check)}\.result\s*==\s*'success'", condition):
        return [f"its if ({condition}) can run it after {check} failed: add && needs.{check}.result == 'success'"]
    return []


def _on_main_check(jobs: dict, job_id: str) -> str | None:
    """A job this one needs (directly or not) that runs the on-main check unconditionally."""
    seen, todo = set(), list(_needs(jobs.get(job_id)))
    while todo:
        need = todo.pop()
        if need in seen or not isinstance(jobs.get(need), dict):
            continue
        seen.add(need)
        job = jobs[need]
        todo += _needs(job)
        if "if" in job or job.get("continue-on-error"):
            continue
        # The generator's script exactly: an edited one (`|| true`, another ref) proves nothing.
        if any(isinstance(s, dict) and str(s.get("run", "")).strip() == ON_MAIN_SCRIPT.strip()
               and "if" not in s and not s.get("continue-on-error") for s in job.get("steps") or ()):
            return need
    return None


def _needs(job: Any) -> list[str]:
    needs = job.get("needs", []) if isinstance(job, dict) else []
    return [needs] if isinstance(needs, str) else list(needs)
