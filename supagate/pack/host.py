"""Run the CrossGuard pack the way the Pulumi engine does, without the engine.

The engine starts a Python pack as `python -m pulumi.policy <engine address> <pack dir>`
in the pack's own virtualenv, reads the gRPC port from its stdout, asks for its policies
(GetAnalyzerInfo), sends the enforcement levels and properties of
`--policy-pack-config` (Configure), then calls Analyze for each resource and
AnalyzeStack once. `supagate plan` and the tests do the same here.
"""

from __future__ import annotations

from supagate.errors import BadInput, Failed

import json
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

from supagate.findings import Finding

LEVELS = ("advisory", "mandatory", "disabled", "remediate")


class PolicyPackError(Failed):
    pass


class PackConfigError(BadInput):
    """A policy pack config that names unknown policies or levels (exit 2)."""


def violation_json(finding: Finding) -> dict:
    """A policy violation as `supagate plan` prints it: rule is the policy, object the URN."""
    return {"policy": finding.rule, "enforcement": finding.enforcement, "resource": finding.object,
            "message": finding.message}


def pack_python(pack_dir: Path, progress=lambda _: None) -> str:
    """The pack's own interpreter, kept in step with its pyproject.toml and uv.lock as the
    engine's uv toolchain does (`uv sync` in the pack directory). Synced on every run: a
    half-built or stale environment (a failed first build, a pulled lock change) would
    otherwise start a pack that cannot import its policies. A given SUPAGATE_PACK_VENV that
    exists is taken as it is (tests build one per session)."""
    given = os.environ.get("SUPAGATE_PACK_VENV")
    venv = Path(given or pack_dir / ".venv")
    python = venv / "bin" / "python"
    if given and python.exists():
        return str(python)
    progress(f"{'Syncing' if python.exists() else 'Building'} the policy pack's virtualenv in {venv} (uv sync)...")
    env = {**os.environ, "UV_PROJECT_ENVIRONMENT": str(venv)}
    # Bytecode compiled when the environment is built: where PYTHONDONTWRITEBYTECODE is set
    # the pack would otherwise compile pulumi from source at every start (0.54 s to its
    # port, 0.19 s with). Later syncs leave it be (compiling again costs every plan time).
    compile_bytecode = ["--compile-bytecode"] if not python.exists() else []
    done = subprocess.run(["uv", "sync", "--locked", *compile_bytecode, "--project", str(pack_dir)],
                          capture_output=True, text=True, env=env, timeout=600)
    if done.returncode != 0:
        raise PolicyPackError(f"failed to build the policy pack's environment: {done.stderr.strip()[-800:]}\n"
                              "Run `uv sync --project policies` and read its error.")
    return str(python)


def load_pack_config(path: Path | None) -> dict[str, Any]:
    if path is None:
        return {}
    try:
        document = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise PackConfigError(f"failed to read the policy pack config {path}: {exc}\n"
                              "Pass a JSON file like policies/config/prod.json.") from None
    if not isinstance(document, dict):
        raise PackConfigError(f"{path}: the policy pack config must be a JSON object")
    return document


def _level(value: Any, where: str) -> str | None:
    level = value if isinstance(value, str) else (value or {}).get("enforcementLevel")
    if level is not None and level not in LEVELS:
        raise PackConfigError(f"{where}: unknown enforcement level {level!r}\nUse one of: {', '.join(LEVELS)}.")
    return level


class PolicyPack:
    """A running pack; use as a context manager."""

    def __init__(self, pack_dir: Path, python: str | None = None, stack: str = "dev",
                 project: str = "supabase-platform"):
        self.pack_dir, self.python = Path(pack_dir).resolve(), python or sys.executable
        self.stack, self.project = stack, project
        self._proc: subprocess.Popen | None = None
        self._stderr: list[str] = []

    def __enter__(self) -> "PolicyPack":
        return self.launch().ready()

    def launch(self) -> "PolicyPack":
        """Start the pack's process without waiting for it (it spends ~0.5 s importing):
        the caller works meanwhile, then calls `ready()`. Stop it with __exit__."""
        env = {**os.environ, "PULUMI_PROJECT": self.project, "PULUMI_STACK": self.stack,
               "PULUMI_DRY_RUN": "true", "PYTHONUNBUFFERED": "1"}
        env.pop("PYTHONPATH", None)  # the pack sees only its own environment, as under the engine
        self._proc = subprocess.Popen([self.python, "-m", "pulumi.policy", "127.0.0.1:0", str(self.pack_dir)],
                                      cwd=self.pack_dir, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                      text=True, env=env)
        threading.Thread(target=lambda: self._stderr.extend(self._proc.stderr), daemon=True).start()
        return self

    def ready(self) -> "PolicyPack":
        """Wait for the launched pack to print its port, then connect to it."""
        import grpc
        from pulumi.runtime.proto import analyzer_pb2_grpc

        port = self._proc.stdout.readline().strip()
        if not port.isdigit():
            self._proc.wait(timeout=10)
            raise PolicyPackError("failed to start the policy pack: "
                                  + ("".join(self._stderr).strip()[-1500:] or "it printed no port") +
                                  "\nRun `python -m pulumi.policy 0 policies` in the pack's environment to see why.")
        self._channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        self.stub = analyzer_pb2_grpc.AnalyzerStub(self._channel)
        return self

    def __exit__(self, *exc) -> None:
        if getattr(self, "_channel", None) is not None:
            self._channel.close()
        if self._proc is not None:
            self._proc.kill()
            self._proc.wait()

    def info(self):
        from google.protobuf import empty_pb2

        return self.stub.GetAnalyzerInfo(empty_pb2.Empty())

    def configure(self, config: dict[str, Any], source: str = "policy config") -> dict[str, str]:
        """Apply a `--policy-pack-config` document as the engine does: a policy's own entry,
        else `all`, else the level the policy declares. Returns policy -> level."""
        from google.protobuf import struct_pb2
        from pulumi.runtime.proto import analyzer_pb2

        info = self.info()
        names = {p.name for p in info.policies}
        unknown = sorted(set(config) - names - {"all"})
        if unknown:
            raise PackConfigError(f"{source}: no policy named {', '.join(unknown)} in pack {info.name}\n"
                                  f"Known policies: {', '.join(sorted(names))}.")
        default = _level(config.get("all"), f"{source}: all")
        levels, request = {}, analyzer_pb2.ConfigureAnalyzerRequest()
        for policy in info.policies:
            entry = config.get(policy.name)
            level = (_level(entry, f"{source}: {policy.name}") or default
                     or analyzer_pb2.EnforcementLevel.Name(policy.enforcementLevel).lower())
            properties = struct_pb2.Struct()
            if isinstance(entry, dict):
                properties.update({k: v for k, v in entry.items() if k != "enforcementLevel"})
            request.policyConfig[policy.name].CopyFrom(analyzer_pb2.PolicyConfig(
                enforcementLevel=analyzer_pb2.EnforcementLevel.Value(level.upper()), properties=properties))
            levels[policy.name] = level
        self.stub.Configure(request)
        return levels

    def analyze(self, resource: dict[str, Any]) -> list[Finding]:
        from pulumi.runtime.proto import analyzer_pb2

        response = self._call(self.stub.Analyze, analyzer_pb2.AnalyzeRequest(
            type=resource["type"], name=resource["name"], urn=resource["urn"],
            properties=_struct(resource.get("inputs") or {}), options=_options(resource)), resource["urn"])
        return _violations(response, resource["urn"])

    def analyze_stack(self, resources: list[dict[str, Any]]) -> list[Finding]:
        from pulumi.runtime.proto import analyzer_pb2

        # The engine gives stack policies each resource's OUTPUTS (resource policies get inputs).
        request = analyzer_pb2.AnalyzeStackRequest(resources=[analyzer_pb2.AnalyzerResource(
            type=r["type"], name=r["name"], urn=r["urn"], parent=r.get("parent") or "",
            properties=_struct(r["outputs"]), options=_options(r)) for r in resources])
        return _violations(self._call(self.stub.AnalyzeStack, request, "the stack"), "")

    def _call(self, method, request, what: str):
        import grpc

        try:
            return method(request, timeout=300)
        except grpc.RpcError as exc:
            raise PolicyPackError(f"the policy pack failed while analysing {what}: {exc.details()}\n"
                                  "This is a bug in a policy; the pack's stderr follows:\n"
                                  + "".join(self._stderr).strip()[-1500:]) from None


def _struct(value: dict[str, Any]):
    from google.protobuf import struct_pb2

    struct = struct_pb2.Struct()
    struct.update(value)
    return struct


def _options(resource: dict[str, Any]):
    from pulumi.runtime.proto import analyzer_pb2

    return analyzer_pb2.AnalyzerResourceOptions(
        parent=resource.get("parent") or "",
        additionalSecretOutputs=resource.get("additional_secret_outputs") or [])


def _violations(response, default_urn: str) -> list[Finding]:
    from pulumi.runtime.proto import analyzer_pb2

    return [Finding(rule=d.policyName, object=d.urn or default_urn, message=d.message, source="pack",
                    enforcement=analyzer_pb2.EnforcementLevel.Name(d.enforcementLevel).lower())
            for d in response.diagnostics]
