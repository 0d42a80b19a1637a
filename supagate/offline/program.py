"""Evaluate the Pulumi program offline under the SDK's mock runtime.

Used by the tests (and by `supagate plan`): runs `__main__.py` with a stack's config and a
monitor that records every registration as the engine would receive it: type, name,
parent, the serialized inputs (where secrets are still wrapped as secrets) and the
declared additional secret outputs. Pulumi's runtime is process-global, so call
`evaluate` once per process (the tests start one process per stack).
"""

from __future__ import annotations

import json
import os
import runpy
import zlib
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270"
SIG_KEY = "4dabf18193072939515e22adb298388d"


@dataclass
class Registration:
    type: str
    name: str
    urn: str
    parent: str
    custom: bool
    inputs: dict[str, Any]  # JSON form; secrets appear as {"<sig>": "<secret sig>", "value": ...}
    additional_secret_outputs: list[str] = field(default_factory=list)
    # What the engine would hold after the create: what the mock returned (the inputs, as
    # our providers return them, plus what they compute). Stack policies get these.
    outputs: dict[str, Any] = field(default_factory=dict)


def evaluate(project_root: Path, stack: str, config: dict[str, Any], secret_keys: list[str],
             stack_outputs: dict[str, dict] | None = None) -> dict:
    """Run the program; returns {"error": ..., "registrations": [...]} as plain data.
    `stack_outputs` answers StackReferences: fully qualified stack name -> its outputs."""
    import pulumi
    from google.protobuf import json_format
    from pulumi.runtime import mocks

    registrations: list[Registration] = []

    class Mocks(pulumi.runtime.Mocks):
        def new_resource(self, args: pulumi.runtime.MockResourceArgs):
            outputs = dict(args.inputs)
            if args.typ == "pulumi:pulumi:StackReference":
                outputs["outputs"] = (stack_outputs or {}).get(args.inputs.get("name") or args.name, {})
            return [f"{args.name}-id", outputs]

        def call(self, args: pulumi.runtime.MockCallArgs):
            # GitHub lookups of reviewers: a stable numeric id per name, as GitHub would give.
            if args.token in ("github:index/getTeam:getTeam", "github:index/getUser:getUser"):
                name = args.args.get("slug") or args.args.get("username") or ""
                return {"id": str(zlib.crc32(name.encode()) % 10_000_000), "nodeId": f"node-{name}"}
            return {}

    class RecordingMonitor(mocks.MockMonitor):
        def RegisterResource(self, request):
            response = super().RegisterResource(request)
            registrations.append(Registration(
                type=request.type, name=request.name, urn=response.urn, parent=request.parent,
                custom=bool(request.custom),
                inputs=json_format.MessageToDict(request.object),
                additional_secret_outputs=list(request.additionalSecretOutputs),
                outputs=json_format.MessageToDict(response.object)))
            return response

        def ReadResource(self, request):  # StackReferences and other reads appear in the plan too
            response = super().ReadResource(request)
            registrations.append(Registration(
                type=request.type, name=request.name, urn=response.urn, parent=request.parent, custom=True,
                inputs=json_format.MessageToDict(request.properties),
                additional_secret_outputs=list(request.additionalSecretOutputs),
                outputs=json_format.MessageToDict(response.properties)))
            return response

    os.chdir(project_root)
    sys.path.insert(0, str(project_root))
    pulumi.runtime.set_all_config({f"supabase-platform:{k}": v if isinstance(v, str) else json.dumps(v)
                                   for k, v in config.items()},
                                  [f"supabase-platform:{k}" for k in secret_keys])
    monitor = RecordingMonitor(Mocks())
    mocks.set_mocks(Mocks(), project="supabase-platform", stack=stack, preview=True, monitor=monitor)
    error: str | None = None
    try:
        runpy.run_path(str(project_root / "__main__.py"), run_name="__main__")
        _drain()
    except Exception as exc:  # the program's own error, e.g. invalid settings
        error = str(exc)
    return {"error": error, "registrations": [r.__dict__ for r in registrations]}


def _drain() -> None:
    """Wait for every outstanding registration, as the engine does before exiting."""
    from pulumi.runtime.stack import wait_for_rpcs
    from pulumi.runtime.sync_await import _sync_await

    _sync_await(wait_for_rpcs())


def is_secret(value: Any) -> bool:
    return isinstance(value, dict) and value.get(SIG_KEY) == SECRET_SIG


def main() -> None:
    """`python -m supagate.offline.program` reads {"root", "stack", "config", "secret_keys",
    "stack_outputs"} as JSON on stdin (config holds secrets: never on a command line) and
    prints the result as JSON. The heavy imports come first: `supagate plan` starts this
    process before it has read the settings, so they overlap its work."""
    import pulumi.runtime.mocks  # noqa: F401
    import google.protobuf.json_format  # noqa: F401
    import supagate.config.loading  # noqa: F401

    request = json.load(sys.stdin)
    result = evaluate(Path(request["root"]), request["stack"], request["config"], request.get("secret_keys") or [],
                      request.get("stack_outputs"))
    sys.stdout.write(json.dumps(result))


if __name__ == "__main__":
    main()
