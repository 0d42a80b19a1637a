"""Prism serving the vendored Management API spec on loopback, behind a small recording
proxy. Prism rejects a request that does not match the spec (422 with the violations);
the proxy keeps every such rejection so a test fails on any of them, and records each
request's method and path. Prism's static example for the health endpoint says
COMING_UP forever, so the proxy answers a validated health request as ACTIVE_HEALTHY.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from supagate.postgres.embedded import free_port
from tests.conftest import ROOT

SPEC = Path(__file__).parent / "supabase-management-api-openapi.json"
SPEC_SHA256 = "f68dc5692c1b1923299e25241847724d277d759b2b4bba1ea7fd27754a45e7c3"  # ../shared/vendor/SOURCES.md
REF = "abcdefghijklmnopqrst"


@dataclass
class Recorder:
    requests: list[tuple[str, str]] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)
    bodies: list[bytes] = field(default_factory=list)  # each request's body, in order

    def reset(self) -> None:
        self.requests.clear()
        self.violations.clear()
        self.bodies.clear()


@pytest.fixture(scope="session")
def prism():
    binary = ROOT / "node_modules" / ".bin" / "prism"
    if not binary.exists():
        pytest.fail("Prism is not installed: run scripts/setup (npm install of @stoplight/prism-cli)")
    port = free_port()
    proc = subprocess.Popen([str(binary), "mock", str(SPEC), "--host", "127.0.0.1", "--port", str(port), "--errors"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 120
    for line in proc.stdout:
        if "Prism is listening" in line:
            break
        if time.monotonic() > deadline:
            break
    else:
        pytest.fail("Prism exited before listening")
    threading.Thread(target=lambda: [None for _ in proc.stdout], daemon=True).start()
    yield f"http://127.0.0.1:{port}"
    proc.kill()
    proc.wait()


def deploy_body_problems(content_type: str, body: bytes, query: dict) -> tuple[list[str], dict]:
    """Check a functions/deploy request against the spec: the `slug` query parameter's
    pattern, and the multipart body's FunctionDeployBody (metadata object, file parts)."""
    import re
    from email.parser import BytesParser

    spec = json.loads(SPEC.read_text())
    operation = spec["paths"]["/v1/projects/{ref}/functions/deploy"]["post"]
    schema = operation["requestBody"]["content"]["multipart/form-data"]["schema"]["$ref"].rsplit("/", 1)[-1]
    body_schema = spec["components"]["schemas"][schema]
    problems: list[str] = []
    slug_pattern = next(p["schema"]["pattern"] for p in operation["parameters"] if p["name"] == "slug")
    for slug in query.get("slug", []):
        if not re.match(slug_pattern, slug):
            problems.append(f"query slug {slug!r} does not match {slug_pattern}")
    if not content_type.startswith("multipart/form-data"):
        return problems + [f"content type {content_type!r} is not multipart/form-data"], {}
    message = BytesParser().parsebytes(f"Content-Type: {content_type}\r\n\r\n".encode() + body)
    parts: dict[str, list] = {}
    for part in message.get_payload():
        parts.setdefault(part.get_param("name", header="content-disposition"), []).append(part)
    unknown = set(parts) - set(body_schema["properties"])
    if unknown:
        problems.append(f"unknown form fields {sorted(unknown)}")
    metadata: dict = {}
    if "metadata" not in parts:
        problems.append("required field metadata is missing")
    else:
        try:
            metadata = json.loads(parts["metadata"][0].get_payload(decode=True))
        except ValueError:
            problems.append("metadata is not a JSON object")
        meta_schema = body_schema["properties"]["metadata"]
        kinds = {"string": str, "boolean": bool, "array": list}
        for key in meta_schema.get("required", []):
            if key not in metadata:
                problems.append(f"metadata.{key} is required")
        for key, value in metadata.items():
            if key not in meta_schema["properties"]:
                problems.append(f"metadata.{key} is not in the spec")
            elif not isinstance(value, kinds[meta_schema["properties"][key]["type"]]):
                problems.append(f"metadata.{key} must be {meta_schema['properties'][key]['type']}")
    for part in parts.get("file", []):
        if not part.get_filename():
            problems.append("a file part has no file name")
    return problems, metadata


def _violations(response: httpx.Response) -> list[dict]:
    try:
        return response.json().get("validation") or []
    except (ValueError, AttributeError):
        return []


def _only_response_violations(response: httpx.Response) -> bool:
    found = _violations(response) if response.status_code == 500 else []
    return bool(found) and all((v.get("location") or [""])[0] == "response" for v in found)


@pytest.fixture(scope="session")
def validated_api(prism):
    """(base URL of the recording proxy, its Recorder)."""
    recorder = Recorder()
    upstream = httpx.Client(base_url=prism, timeout=30)

    class Proxy(BaseHTTPRequestHandler):
        def _forward(self):
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")}
            if self.command == "POST" and urlsplit(self.path).path.endswith("/functions/deploy"):
                return self._deploy(body)
            response = upstream.request(self.command, self.path, content=body, headers=headers)
            if _only_response_violations(response):
                # Prism's static example breaks the spec's own response patterns (e.g. the
                # postgres config's timeouts); ask for generated data that satisfies them.
                response = upstream.request(self.command, self.path, content=body,
                                            headers={**headers, "Prefer": "dynamic=true"})
            path = self.path.split("?", 1)[0]
            recorder.requests.append((self.command, path))
            recorder.bodies.append(body)
            content = response.content
            if response.status_code in (422, 500) and _violations(response) or response.headers.get("sl-violations"):
                recorder.violations.append(f"{self.command} {self.path}: {response.text[:800]}"
                                           f" {response.headers.get('sl-violations', '')}")
            elif path.endswith("/health") and response.status_code == 200:
                services = parse_qs(urlsplit(self.path).query).get("services", [])
                content = json.dumps([{"name": s, "status": "ACTIVE_HEALTHY", "healthy": True}
                                      for s in services]).encode()
            self.send_response(response.status_code)
            self.send_header("Content-Type", response.headers.get("content-type", "application/json"))
            self.send_header("Content-Length", str(len(content)))
            self.end_headers()
            self.wfile.write(content)

        def _deploy(self, body: bytes):
            """Prism 5.16 cannot validate multipart arrays or JSON parts (stoplightio/prism#2654,
            #2008): it reports `file must be array` and `metadata must be object` for any
            request. This endpoint is validated here against the spec's FunctionDeployBody."""
            recorder.requests.append(("POST", urlsplit(self.path).path))
            problems, metadata = deploy_body_problems(self.headers.get("Content-Type", ""), body,
                                                      parse_qs(urlsplit(self.path).query))
            recorder.violations.extend(f"POST {self.path}: {p}" for p in problems)
            answer = {"id": "0b6a9d9e-0000-4000-8000-000000000001", "slug": metadata.get("name", "fn"),
                      "name": metadata.get("name", "fn"), "status": "ACTIVE", "version": 1,
                      "created_at": 0, "updated_at": 0, "verify_jwt": True,  # as a redeploy that ignored it
                      "entrypoint_path": metadata.get("entrypoint_path", "")}
            content = json.dumps(answer).encode()
            self.send_response(422 if problems else 201)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(content)))
            self.end_headers()
            self.wfile.write(content)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _forward

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Proxy)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", recorder
    server.shutdown()
    upstream.close()
