"""The OFREP handler (supagate/ops/deno/ofrep.ts) served by real Deno, over the flags the
database decides: single and bulk evaluation, FLAG_NOT_FOUND, PARSE_ERROR, ETag and 304,
every answer validated against the protocol's response shapes (tests/fixtures/ofrep); and
its errors: fixed texts, never what failed upstream, and a malformed key is a 400."""

from __future__ import annotations

import http.client
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import jsonschema
import psycopg
import yaml

from supagate.ops.flags import bucket
from tests.conftest import ROOT
from tests.loopback import LoopbackServer, QuietHandler, serve_deno

CONTRACT = yaml.safe_load((ROOT / "tests" / "fixtures" / "ofrep" / "contract.yaml").read_text())
SCRIPT = """import { ofrepHandler } from "%s";
Deno.serve({ hostname: "127.0.0.1", port: Number(Deno.env.get("PORT")), onListen() {} }, ofrepHandler(async (req) => {
  const response = await fetch(`${Deno.env.get("SUPABASE_URL")}/rest/v1/rpc/my_feature_flags`, {
    method: "POST", headers: { authorization: req.headers.get("authorization") ?? "" }, body: "{}" });
  if (!response.ok) throw new Error(`the Data API answered ${response.status}`);
  return await response.json();
}));
"""


def _valid(document, shape: str) -> None:
    jsonschema.Draft202012Validator(CONTRACT[shape]).validate(document)


def data_api(db_url: str) -> LoopbackServer:
    """/rest/v1/rpc/my_feature_flags as PostgREST answers it: the bearer token is the user here."""
    class Handler(QuietHandler):
        def do_POST(self):
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            subject = (self.headers.get("authorization") or "").removeprefix("Bearer ") or None
            with psycopg.connect(db_url, autocommit=True) as conn:
                rows = conn.execute("select key, enabled, reason, kind from ops.flags_for(%s, 'members') "
                                    "where key like 'ofrep_%%'", (subject,)).fetchall()
            self.send_json(200, [dict(zip(("key", "enabled", "reason", "kind"), r)) for r in rows],
                           content_type=None)

    return LoopbackServer(Handler)


def test_ofrep_single_bulk_and_etag(ops_url, tmp_path):
    with psycopg.connect(ops_url, autocommit=True) as conn:
        conn.execute("insert into ops.flags (key, salt, enabled, steps) values ('ofrep_half', 'ofrep_half', true, "
                     "'{5000}'), ('ofrep_off', 'ofrep_off', false, '{10000}') on conflict do nothing")
        conn.execute("insert into ops.flags (key, kind, salt, enabled) values ('ofrep_crisis', 'safety', "
                     "'ofrep_crisis', true) on conflict do nothing")
    user = next(f"user-{i}" for i in range(100) if bucket("ofrep_half", f"user-{i}") < 5000)
    api = data_api(ops_url)
    module = (ROOT / "supagate" / "ops" / "deno" / "ofrep.ts").as_uri()
    proc, url = serve_deno(tmp_path, SCRIPT % module, {"SUPABASE_URL": api.url}, "ofrep")
    auth = {"authorization": f"Bearer {user}"}
    try:
        single = httpx.post(f"{url}/ofrep/v1/evaluate/flags/ofrep_half", json={"context": {"targetingKey": user}},
                            headers=auth)
        encoded = httpx.post(f"{url}/ofrep/v1/evaluate/flags/ofrep%5Fhalf", json={}, headers=auth)  # valid escapes
        missing = httpx.post(f"{url}/ofrep/v1/evaluate/flags/ofrep_nope", json={}, headers=auth)
        broken = httpx.post(f"{url}/ofrep/v1/evaluate/flags/ofrep_half", content=b"{not json", headers=auth)
        bulk = httpx.post(f"{url}/ofrep/v1/evaluate/flags", json={"context": {}}, headers=auth)
        again = httpx.post(f"{url}/ofrep/v1/evaluate/flags", json={}, headers={**auth, "if-none-match": bulk.headers["etag"]})
        with psycopg.connect(ops_url, autocommit=True) as conn:
            conn.execute("update ops.flags set enabled = true where key = 'ofrep_off'")
        changed = httpx.post(f"{url}/ofrep/v1/evaluate/flags", json={}, headers={**auth, "if-none-match": bulk.headers["etag"]})
        signed_out = httpx.post(f"{url}/ofrep/v1/evaluate/flags/ofrep_half", json={})
    finally:
        proc.kill()
        api.close()
    assert single.status_code == 200 and single.json()["value"] is True and single.json()["reason"] == "SPLIT"
    _valid(single.json(), "single_success")
    assert encoded.json() == single.json()
    assert missing.status_code == 404 and missing.json()["errorDetails"] == "flag not found"
    _valid(missing.json(), "flag_not_found")
    assert broken.status_code == 400
    _valid(broken.json(), "evaluation_failure")
    assert bulk.status_code == 200 and bulk.headers["etag"]
    _valid(bulk.json(), "bulk_success")
    flags = {f["key"]: f for f in bulk.json()["flags"]}
    assert flags["ofrep_crisis"]["value"] is True and flags["ofrep_crisis"]["reason"] == "STATIC"
    assert flags["ofrep_off"]["value"] is False and flags["ofrep_off"]["reason"] == "DISABLED"
    assert again.status_code == 304
    assert changed.status_code == 200 and changed.headers["etag"] != bulk.headers["etag"]
    assert signed_out.json()["value"] is False and signed_out.json()["reason"] == "DEFAULT"  # no shared anonymous bucket


def test_the_test_app_ships_the_products_deno_modules():
    from tests.conftest import APP

    shared = APP / "supabase" / "functions" / "_shared"
    for name in ("flags", "rate_limit", "ofrep"):
        assert (shared / f"supagate_{name}.ts").read_text() == \
            (ROOT / "supagate" / "ops" / "deno" / f"{name}.ts").read_text(), name
    assert Path(shared.parent / "flags" / "index.ts").exists()


UPSTREAM_SECRET = "permission denied for table vault.secrets (role authenticator, password=hunter2)"
FAILING = """import { ofrepHandler } from "%s";
Deno.serve({ hostname: "127.0.0.1", port: Number(Deno.env.get("PORT")), onListen() {} }, ofrepHandler(async (req) => {
  const response = await fetch(`${Deno.env.get("SUPABASE_URL")}/rest/v1/rpc/my_feature_flags`, { method: "POST" });
  const text = await response.text();
  if (req.headers.get("x-mode") === "list") return JSON.parse(text);  // the error document, not a list
  throw new Error(`the Data API answered ${response.status}: ${text}`);
}));
"""


def _raw_post(url: str, path: str) -> tuple[int, dict]:
    """POST a path exactly as written (httpx would re-encode a stray `%`)."""
    import json

    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=15)
    try:
        conn.request("POST", path, body=b"{}", headers={"Content-Type": "application/json"})
        answer = conn.getresponse()
        return answer.status, json.loads(answer.read())
    finally:
        conn.close()


def test_errors_are_fixed_texts_and_a_malformed_key_is_a_400(tmp_path):
    """Attacks: the handler returned upstream error text to clients (here a message naming a
    table, a role and a password), and a `%` that is not percent-encoding was a 500."""
    class Failing(QuietHandler):
        def do_POST(self):
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self.send_json(500, {"message": UPSTREAM_SECRET})

    api = LoopbackServer(Failing)
    proc, url = serve_deno(tmp_path, FAILING % (ROOT / "supagate" / "ops" / "deno" / "ofrep.ts").as_uri(),
                           {"SUPABASE_URL": api.url}, "ofrep-failing")
    try:
        single = httpx.post(f"{url}/ofrep/v1/evaluate/flags/ofrep_half", json={})
        bulk = httpx.post(f"{url}/ofrep/v1/evaluate/flags", json={})
        not_a_list = httpx.post(f"{url}/ofrep/v1/evaluate/flags", json={}, headers={"x-mode": "list"})
        malformed = [_raw_post(url, f"/ofrep/v1/evaluate/flags/{key}") for key in ("%zz", "ofrep%", "%E0%A4%A")]
    finally:
        proc.kill()
        api.close()
    for answer in (single, bulk, not_a_list):
        assert answer.status_code == 500 and answer.json() == {"errorDetails": "flags could not be evaluated"}
        _valid(answer.json(), "general_error")
        assert "hunter2" not in answer.text and "vault" not in answer.text
    for (status, document), key in zip(malformed, ("%zz", "ofrep%", "%E0%A4%A")):
        assert status == 400 and document == {"key": key, "errorCode": "PARSE_ERROR",
                                              "errorDetails": "the flag key in the path is not valid percent-encoding"}
        _valid(document, "evaluation_failure")
