"""`supagate plan`: the program evaluated offline under the SDK's mock runtime with a
stack's settings, then the real policy pack run over every resource and the stack, as
`pulumi preview --policy-pack policies --policy-pack-config policies/config/<stack>.json`
would, but with no Pulumi CLI, backend or cloud credentials."""

from __future__ import annotations

from supagate.errors import BadInput, Failed

import json
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from supagate.migrations.files import load_migrations
from supagate.findings import Finding
from supagate.pack.host import PolicyPack, load_pack_config, pack_python, violation_json
from supagate.config.loading import (load_settings, missing_stack_file, secret_keys_of, stack_file_values,
                                     config_set_line, unset_secrets)
from supagate.config.models import Settings



class PlanError(Failed):
    pass


class PlanInputError(BadInput):
    """A missing or unreadable stack file or outputs file (exit 2)."""


@dataclass
class PlanResult:
    resources: list[dict]
    violations: list[Finding]  # rule: the policy; object: the resource's URN
    notes: list[str] = field(default_factory=list)

    @property
    def blocked(self) -> bool:
        return any(v.enforcement == "mandatory" for v in self.violations)

    def to_json(self) -> dict:
        return {"blocked": self.blocked,
                "resources": [{"type": r["type"], "name": r["name"], "parent": r["parent"] or None}
                              for r in self.resources],
                "violations": [violation_json(v) for v in self.violations]}


def plan(root: Path, stack: str, stack_file: Path | None = None, pack_config: Path | None = None,
         staging_outputs: Path | None = None, progress: Callable[[str], None] = lambda _: None,
         assume_secrets: bool = False) -> PlanResult:
    root = root.resolve()
    pack_dir = root / "policies"
    # The program is an interpreter that spends most of its ~0.7 s importing: it starts
    # first and reads its request from stdin once the settings are loaded here (bad input
    # stops here, before the pack's environment is touched); the pack starts after.
    program = subprocess.Popen([sys.executable, "-m", "supagate.offline.program"], stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=root)
    pack = None
    try:
        settings, request, notes = program_request(root, stack, stack_file, staging_outputs, assume_secrets)
        progress(f"Evaluating __main__.py for stack {stack} under the mock runtime...")
        program.stdin.write(json.dumps(request))  # the config holds secrets: never on a command line
        program.stdin.close()
        program.stdin = None  # written and closed: communicate() below only reads
        pack = PolicyPack(pack_dir, python=pack_python(pack_dir, progress), stack=stack).launch()
        by_tier = {"production": "prod.json", "staging": "staging.json"}.get(settings.tier, f"{stack}.json")
        config_path = pack_config or next((p for p in (pack_dir / "config" / f"{stack}.json",
                                                       pack_dir / "config" / by_tier) if p.exists()),
                                          pack_dir / "config" / f"{stack}.json")
        if not config_path.exists():
            notes.append(f"no {config_path.relative_to(root)}: every policy runs at the level it declares")
            config_path = None
        pack.ready().configure(load_pack_config(config_path), str(config_path or "defaults"))
        stdout, stderr = program.communicate(timeout=300)
        if program.returncode != 0:
            raise PlanError(f"failed to evaluate the program: {stderr.strip()[-1500:]}")
        evaluated = json.loads(stdout)
        if evaluated["error"]:
            raise PlanError(f"failed to evaluate the program: {evaluated['error']}")
        resources = evaluated["registrations"]
        progress(f"Running the policy pack over {len(resources)} resources...")
        violations = [v for r in resources for v in pack.analyze(r)]
        violations += pack.analyze_stack(resources)
    finally:
        if pack is not None:
            pack.__exit__(None, None, None)
        if program.poll() is None:
            program.kill()
            program.wait()
    return PlanResult(resources=resources, violations=violations, notes=notes)


def program_request(root: Path, stack: str, stack_file: Path | None = None, staging_outputs: Path | None = None,
                    assume_secrets: bool = False) -> tuple[Settings, dict, list[str]]:
    """The stack's settings, what the program process is sent on stdin, and the notes."""
    stack_file = stack_file or root / f"Pulumi.{stack}.yaml"
    if not stack_file.exists():
        raise PlanInputError(missing_stack_file(stack_file, stack))
    values = stack_file_values(stack_file)
    settings = load_settings(stack, values, str(stack_file), functions_dir=root / "supabase" / "functions")
    notes: list[str] = []
    unset = unset_secrets(stack_file)
    if unset and not assume_secrets:
        # The real load would stop here; a plan that passed would be a lie about `pulumi preview`.
        raise PlanInputError(f"{stack_file}: the program requires secrets this stack file does not hold, so "
                             "`pulumi preview` would fail loading it. Set them:\n  "
                             + "\n  ".join(config_set_line(key, stack) for key in unset)
                             + "\nor pass --assume-secrets to plan with stand-ins (the plan then says so).")
    if unset:
        notes.append(f"planned with stand-ins for secrets the stack file does not hold: {', '.join(unset)}")
    outputs = _stack_outputs(root, settings, staging_outputs, notes)
    # Secret as the engine would pass them: what the stack file holds as `secure:`, and the
    # stand-ins for secrets set only through the engine.
    request = {"root": str(root), "stack": stack, "config": values, "secret_keys": secret_keys_of(stack_file),
               "stack_outputs": outputs}
    return settings, request, notes


def _stack_outputs(root: Path, settings: Settings, staging_outputs: Path | None, notes: list[str]) -> dict:
    """What StackReferences return. Staging's outputs come from `pulumi stack output --json`
    saved to a file; without one they are taken as this commit's, and the plan says so."""
    if not settings.staging_stack:
        return {}
    if staging_outputs is not None:
        try:
            return {settings.staging_stack: json.loads(Path(staging_outputs).read_text())}
        except (OSError, json.JSONDecodeError) as exc:
            raise PlanInputError(f"failed to read {staging_outputs}: {exc}\n"
                            "Save it with `pulumi stack output --json --stack staging > FILE`.") from None
    from supagate.supabase_api.edge_functions import discover

    migrations = load_migrations(root / settings.migrations.directory)
    functions = discover(root / "supabase", settings.functions)
    notes.append(f"staging outputs assumed from this commit (every migration on {settings.staging_stack}); "
                 "pass --staging-outputs FILE from `pulumi stack output --json --stack staging` to check "
                 "the real promotion")
    return {settings.staging_stack: {"migrationChecksums": {m.version: m.checksum for m in migrations},
                                     "functionHashes": {f.slug: f.content_sha256 for f in functions}}}


def summary(registration: dict) -> str:
    """What an operations resource will do, for the plan's reader: a job's schedule and next
    runs, a rule's condition."""
    from supagate.offline.resource_types import ALERT_RULE, CRON_JOB, FEATURE_FLAG

    inputs = registration.get("inputs") or {}
    flag = inputs.get("flag") if registration["type"] == FEATURE_FLAG else None
    if isinstance(flag, dict):
        from supagate.ops.flags import describe

        if flag.get("kind") == "safety":
            return "safety: on for everyone, always"
        steps = [int(s) for s in flag.get("steps") or []]  # protobuf numbers arrive as floats
        step = int(flag.get("step") or 0)
        where = describe(steps[step]) if step < len(steps) else "?"
        state = "off" if not flag.get("enabled") else "paused" if flag.get("paused") else f"at {where}"
        plan = " -> ".join(describe(s) for s in steps) if len(steps) > 1 else ""
        return (f"{flag.get('kind')} {state}" + (f", step {step} of {plan}" if plan else "")
                + (f", soak {flag.get('soak')}" if plan else "")
                + (f", guards {', '.join(flag['guards'])}" if flag.get("guards") else ""))
    if registration["type"] == CRON_JOB:
        return f"{inputs.get('schedule')} UTC; next {inputs.get('next_runs')}"
    rule = inputs.get("rule") if registration["type"] == ALERT_RULE else None
    if isinstance(rule, dict):
        hold = rule.get("for_interval", "0 seconds")
        return (f"{rule.get('kind')} {rule.get('comparison')} {rule.get('threshold'):g}"
                + ("" if hold.startswith("0 ") else f" for {hold}") + f" -> {', '.join(rule.get('notify') or [])}")
    return ""


def render_text(result: PlanResult) -> str:
    by_parent: dict[str, list[dict]] = {}
    for r in result.resources:
        by_parent.setdefault(r["parent"] or "", []).append(r)
    lines = ["Resources:"]

    def walk(urn: str, depth: int) -> None:
        for r in by_parent.get(urn, []):
            detail = summary(r)
            lines.append(f"{'  ' * (depth + 1)}{r['type']}  {r['name']}" + (f"  ({detail})" if detail else ""))
            walk(r["urn"], depth + 1)

    walk("", 0)
    lines.append("")
    if result.violations:
        lines.append("Policy violations:")
        for v in result.violations:
            label = "MANDATORY" if v.enforcement == "mandatory" else v.enforcement
            target = v.object.rsplit("::", 1)[-1] if v.object else "(stack)"
            lines.append(f"  [{label}] {v.rule}  {target}")
            lines.append(f"    {v.message}")
    for note in result.notes:
        lines.append(f"note: {note}")
    mandatory = sum(v.enforcement == "mandatory" for v in result.violations)
    lines.append(f"{'BLOCKED' if result.blocked else 'PASS'}: {len(result.resources)} resources, "
                 f"{mandatory} mandatory and {len(result.violations) - mandatory} other violation(s).")
    return "\n".join(lines)
