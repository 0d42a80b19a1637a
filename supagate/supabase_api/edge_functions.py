"""Edge functions: found in supabase/functions/<slug>, checked with `deno check`, deployed
through the Management API's multipart deploy endpoint.

A function's bundle is its folder plus the shared folders (`_shared`, any `_name`) it
imports; paths are relative to supabase/functions, so `../_shared/x.ts` resolves as it
does locally. `verify_jwt` comes from config.toml unless the stack overrides it, and a
function without JWT verification must name the signature header it checks instead.
"""

from __future__ import annotations

from supagate.errors import BadInput

import hashlib
import json
import os
import re
import subprocess
import tempfile
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

from supagate.supabase_api.client import ManagementApi
from supagate.tools import python_tool

_SHARED_IMPORT = re.compile(r"""['"](?:\.\./)+(_[A-Za-z0-9_-]+)/""")
_SLUG = re.compile(r"^[A-Za-z][A-Za-z0-9_-]*\Z")


class FunctionError(BadInput):
    """A function folder or config that cannot be deployed; names the file and the fix."""


@dataclass(frozen=True)
class EdgeFunctionSource:
    slug: str
    entrypoint: str  # relative to supabase/functions, e.g. "health-check/index.ts"
    verify_jwt: bool
    files: Mapping[str, str] = field(repr=False)  # relative path -> text
    import_map: str | None = None
    signature_header: str | None = None
    static_patterns: tuple[str, ...] = ()

    @property
    def content_sha256(self) -> str:
        """What decides a redeploy (with verify_jwt): every file and how it is run."""
        document = {"entrypoint": self.entrypoint, "import_map": self.import_map,
                    "static_patterns": list(self.static_patterns), "files": dict(sorted(self.files.items()))}
        return hashlib.sha256(json.dumps(document, sort_keys=True).encode()).hexdigest()

    def inputs(self) -> dict[str, Any]:
        return {"slug": self.slug, "entrypoint": self.entrypoint, "verify_jwt": self.verify_jwt,
                "import_map": self.import_map, "signature_header": self.signature_header,
                "static_patterns": list(self.static_patterns), "files": dict(self.files),
                "content_sha256": self.content_sha256}


def discover(supabase_dir: Path, overrides: Mapping[str, Any] | None = None) -> list[EdgeFunctionSource]:
    """Every enabled function folder, with its settings; one error naming every problem."""
    supabase_dir = Path(supabase_dir)
    functions_dir = supabase_dir / "functions"
    config = _config(supabase_dir / "config.toml").get("functions", {})
    overrides = dict(overrides or {})
    problems: list[str] = []
    found: list[EdgeFunctionSource] = []
    if not functions_dir.is_dir():
        return []
    slugs = function_folders(functions_dir)
    problems += overrides_without_folder(functions_dir, overrides)
    for slug in slugs:
        entry = config.get(slug, {})
        if entry.get("enabled", True) is False:
            continue
        if not _SLUG.match(slug):
            problems.append(f"{functions_dir / slug}: {slug!r} is not a valid function name "
                            "(a letter, then letters, digits, - or _)")
            continue
        override = overrides.get(slug)
        entrypoint = _relative(entry.get("entrypoint"), slug, "index.ts")
        if not (functions_dir / entrypoint).is_file():
            problems.append(f"{functions_dir / entrypoint}: no entrypoint for function {slug}; create it or set "
                            f"[functions.{slug}] entrypoint in {supabase_dir / 'config.toml'}")
            continue
        verify_jwt = entry.get("verify_jwt", True)
        import_map = entry.get("import_map")
        signature_header = None
        if override is not None:
            verify_jwt = verify_jwt if override.verify_jwt is None else override.verify_jwt
            import_map = override.import_map or import_map
            signature_header = override.signature_header
        if not verify_jwt and not signature_header:
            problems.append(f"functions.{slug}: verify_jwt is off (config.toml) but the stack names no "
                            f"signatureHeader; set supabase-platform:functions.{slug}.signatureHeader to the "
                            "header the function verifies")
        files = _bundle(functions_dir, slug)
        import_map = _relative(import_map, slug, None) if import_map else None
        found.append(EdgeFunctionSource(slug=slug, entrypoint=entrypoint, verify_jwt=bool(verify_jwt), files=files,
                                        import_map=import_map, signature_header=signature_header,
                                        static_patterns=tuple(entry.get("static_files") or ())))
    if problems:
        raise FunctionError("failed to load edge functions:\n  " + "\n  ".join(problems))
    return found


def function_folders(functions_dir: Path) -> list[str]:
    """The functions' folders (not `_shared` or hidden ones); none without a functions folder."""
    if not functions_dir.is_dir():
        return []
    return sorted(p.name for p in functions_dir.iterdir() if p.is_dir() and not p.name.startswith(("_", ".")))


def overrides_without_folder(functions_dir: Path, overrides: Iterable[str]) -> list[str]:
    """A problem for each function the stack overrides that has no folder (a typo would
    otherwise leave the real function with its config.toml settings, unnoticed)."""
    if not functions_dir.is_dir():
        return []
    return [f"functions.{slug}: the stack overrides a function that has no folder {functions_dir / slug}; "
            "remove the override or add the function"
            for slug in sorted(set(overrides) - set(function_folders(functions_dir)))]


def _config(path: Path) -> dict:
    try:
        return tomllib.loads(path.read_text()) if path.exists() else {}
    except tomllib.TOMLDecodeError as exc:
        raise FunctionError(f"{path}: not valid TOML ({exc})\nFix the file (supabase init writes a valid one).") from None


def _relative(path: str | None, slug: str, default: str | None) -> str:
    """config.toml paths are relative to supabase/ (`./functions/x/index.ts`)."""
    if not path:
        return f"{slug}/{default}"
    parts = Path(path).parts
    if "functions" in parts:
        parts = parts[parts.index("functions") + 1:]
    return str(Path(*parts))


def _bundle(functions_dir: Path, slug: str) -> dict[str, str]:
    files: dict[str, str] = {}
    pending, seen = [slug], set()
    while pending:
        folder = pending.pop()
        if folder in seen:
            continue
        seen.add(folder)
        for path in sorted((functions_dir / folder).rglob("*")):
            if path.is_file() and not any(part.startswith(".") for part in path.parts):
                text = path.read_text(encoding="utf-8")
                files[str(path.relative_to(functions_dir))] = text
                pending.extend(m.group(1) for m in _SHARED_IMPORT.finditer(text))
    return files


# ---------------------------------------------------------------- deno check

def deno_binary() -> str:
    found = python_tool("deno")
    if found:
        return found
    try:
        import deno

        return deno.find_deno_bin()
    except (ImportError, FileNotFoundError):
        raise FunctionError("failed to check edge functions: deno is not installed\n"
                            "Run scripts/setup (the PyPI package `deno` is a dependency).") from None


def deno_check(function: EdgeFunctionSource) -> None:
    """Type-check the function's bundle as it will be deployed; raise with the compiler's
    message when it fails."""
    with tempfile.TemporaryDirectory(prefix=f"supagate-fn-{function.slug}-") as tmp:
        root = Path(tmp)
        for relative, text in function.files.items():
            target = root / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text)
        args = [deno_binary(), "check", "--quiet", "--node-modules-dir=none"]
        if function.import_map:
            args += ["--import-map", str(root / function.import_map)]
        done = subprocess.run([*args, str(root / function.entrypoint)], capture_output=True, text=True,
                              cwd=root, timeout=300, env=_deno_env())
    if done.returncode != 0:
        message = _strip_ansi(done.stderr or done.stdout).replace(f"file://{root}/", "").replace(f"{root}/", "")
        raise FunctionError(f"failed to check edge function {function.slug}: deno check reported:\n"
                            + message.strip()[-3000:]
                            + f"\nFix supabase/functions/{function.entrypoint} (or what it imports) and run again.")


def _deno_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SUPABASE_", "PG"))}
    env["NO_COLOR"] = "1"
    env.setdefault("DENO_NO_UPDATE_CHECK", "1")
    return env


def _strip_ansi(text: str) -> str:
    return re.sub(r"\x1b\[[0-9;]*m", "", text)


# ---------------------------------------------------------------- the API

def deploy(api: ManagementApi, ref: str, props: Mapping[str, Any]) -> dict[str, Any]:
    """Deploy the bundle; then make sure verify_jwt is what was asked (PATCH if not)."""
    metadata = {"entrypoint_path": props["entrypoint"], "name": props["slug"],
                "verify_jwt": bool(props["verify_jwt"])}
    if props.get("import_map"):
        metadata["import_map_path"] = props["import_map"]
    if props.get("static_patterns"):
        metadata["static_patterns"] = list(props["static_patterns"])
    # multipart/form-data: `metadata` is an object part (JSON, as OpenAPI encodes objects in
    # multipart), then one `file` part per file, named by its path.
    parts = [("metadata", (None, json.dumps(metadata).encode(), "application/json"))]
    parts += [("file", (path, text.encode(), "application/typescript" if path.endswith(".ts") else
                        "application/octet-stream")) for path, text in sorted(props["files"].items())]
    before = read(api, ref, props["slug"])
    before_version = (before or {}).get("version")

    def applied() -> bool:  # a lost answer: a new version means the deploy took effect
        now = read(api, ref, props["slug"])
        return now is not None and (before is None or (now.get("version") or 0) > (before_version or 0))

    deployed = api.request("POST", f"/v1/projects/{ref}/functions/deploy", params={"slug": props["slug"]},
                           files=parts, applied=applied)
    if deployed is None:  # applied by the try whose answer was lost: take its state from the API
        deployed = read(api, ref, props["slug"]) or {}
    if deployed.get("verify_jwt") is not None and deployed.get("verify_jwt") != bool(props["verify_jwt"]):
        deployed = set_verify_jwt(api, ref, props["slug"], bool(props["verify_jwt"]))
    return deployed


def set_verify_jwt(api: ManagementApi, ref: str, slug: str, verify_jwt: bool) -> dict[str, Any]:
    return api.request("PATCH", f"/v1/projects/{ref}/functions/{slug}", json_body={"verify_jwt": verify_jwt}) or {}


def read(api: ManagementApi, ref: str, slug: str) -> dict[str, Any] | None:
    found = api.request("GET", f"/v1/projects/{ref}/functions/{slug}", ok=(404,))
    return found if isinstance(found, dict) and found.get("slug") else None


def delete(api: ManagementApi, ref: str, slug: str) -> None:
    api.request("DELETE", f"/v1/projects/{ref}/functions/{slug}", ok=(404,))
