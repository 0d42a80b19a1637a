"""What may leave a job that holds an environment's secrets as a workflow artifact (readable by
everyone with read access to the repository, for its retention period): age-encrypted files
and row counts, encrypted to recipients an admin set on the environment.

The recipients are the `production` environment's secret SNAPSHOT_RECIPIENTS, set outside any
stack (supagate/delivery/environments.py): a stack setting, or any file in the repository, is
something a pull request changes, and `supagate plan` cannot tell an ops key from an
attacker's. So a job may set SNAPSHOT_RECIPIENTS only to `${{ secrets.SNAPSHOT_RECIPIENTS }}`,
in an environment the stacks keep to main, and a job that uploads `*.age` files must take
them from there.
"""

from __future__ import annotations

from supagate.delivery.environments import SNAPSHOT_RECIPIENTS as NAME
from supagate.delivery.workflow_expressions import is_only

UPLOAD = "actions/upload-artifact@"
ALLOWED_SUFFIXES = (".age", ".rows.json")


def from_environment() -> str:
    return f"${{{{ secrets.{NAME} }}}}"


def snapshot_problems(document: dict, job: dict, kept_to_main: bool) -> list[str]:
    steps = [s for s in job.get("steps") or () if isinstance(s, dict)]
    settings = [(k, v) for env in (document.get("env"), job.get("env"), *(s.get("env") for s in steps))
                if isinstance(env, dict) for k, v in env.items() if str(k).upper() == NAME]
    problems = [f"sets {NAME} to {value!r}: the snapshot's recipients come only from the environment's secret "
                f"({from_environment()}), which an admin sets and no stack or pull request can change"
                for _, value in settings if not is_only(value, "secrets", NAME)]
    if any(isinstance(s.get("run"), str) and NAME in s["run"].upper() for s in steps):
        problems.append(f"a run script touches {NAME}: the recipients come only from {from_environment()} "
                        "in the job's env")
    if settings and not kept_to_main:
        problems.append(f"reads {NAME} in an environment the stacks do not keep to main: another branch's "
                        "run could choose the recipients")
    for step in steps:
        uses = step.get("uses")
        if not (isinstance(uses, str) and uses.lower().startswith(UPLOAD)):
            continue
        paths = step.get("with", {}).get("path") if isinstance(step.get("with"), dict) else None
        lines = [line.strip() for line in paths.splitlines() if line.strip()] if isinstance(paths, str) else []
        if not lines:
            problems.append(f"uploads an artifact without a literal path: {_only_encrypted()}")
        for line in lines:
            if not line.startswith("!") and ("${{" in line or not line.endswith(ALLOWED_SUFFIXES)):
                problems.append(f"uploads {line}: {_only_encrypted()}")
        if any(line.endswith(".age") for line in lines) and not settings:
            problems.append(f"uploads age-encrypted files but takes no {NAME} from {from_environment()}: their "
                            "recipients would come from the repository, which a pull request can change")
    return problems


def _only_encrypted() -> str:
    return ("an artifact is readable by everyone with read access to the repository, and this job holds an "
            "environment's secrets; upload only age-encrypted files (*.age) and row counts (*.rows.json)")
