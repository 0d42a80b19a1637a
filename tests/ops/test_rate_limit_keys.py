"""Whose quota a request spends, and how many keys a window can hold. The attacks: the
limiter keyed on the leftmost X-Forwarded-For, which the client writes, so rotating forged
values from one client got 10 of 10 requests through a limit of 3, spoofing a victim's
address spent the victim's quota, and every forged value added a row to ops.rate_counters.
Now the key is the entry the platform's proxy appended (tests/ops/edge_gateway.py plays
that proxy), and a window holds at most max_keys keys. The safe twins: two honest clients
each get their full quota, keys already counted keep theirs at the cap."""

from __future__ import annotations

import json
import subprocess
from concurrent.futures import ThreadPoolExecutor

import psycopg
import pytest

from tests.ops.edge_gateway import LIMITER, client, counters, edge, policy


@pytest.fixture(scope="module")
def functions_url(ops_cluster, tmp_path_factory):
    with edge(ops_cluster.url, tmp_path_factory.mktemp("edge")) as url:
        yield url


def _statuses(address: str, url: str, forwarded: list[str | None]) -> list[int]:
    with client(address) as http:
        return [http.post(url, headers={"X-Forwarded-For": f} if f else {}).status_code for f in forwarded]


def test_forged_forwarded_for_values_buy_no_extra_requests(ops_url, functions_url):
    policy(ops_url, "spoof-fn", limit=3)
    forged = [f"198.51.100.{i}" for i in range(10)]
    assert _statuses("127.0.0.2", f"{functions_url}/spoof-fn", forged) == [202] * 3 + [429] * 7
    assert counters(ops_url, "spoof-fn") == {"spoof-fn:ip:127.0.0.2": 10}  # one row, not one per forged value


def test_spoofing_a_victims_address_spends_only_the_attackers_quota(ops_url, functions_url):
    policy(ops_url, "victim-fn", limit=3)
    attacker = _statuses("127.0.0.2", f"{functions_url}/victim-fn", ["127.0.0.3", "127.0.0.3, 127.0.0.3"] * 3)
    victim = _statuses("127.0.0.3", f"{functions_url}/victim-fn", [None] * 3)
    assert attacker == [202] * 3 + [429] * 3 and victim == [202] * 3


def test_two_honest_clients_each_get_their_full_quota(ops_url, functions_url):
    policy(ops_url, "honest-fn", limit=3)
    with ThreadPoolExecutor(max_workers=2) as pool:
        first, second = pool.map(lambda a: _statuses(a, f"{functions_url}/honest-fn", [None] * 4),
                                 ["127.0.0.5", "127.0.0.6"])
    assert first == second == [202, 202, 202, 429]
    assert counters(ops_url, "honest-fn") == {"honest-fn:ip:127.0.0.5": 4, "honest-fn:ip:127.0.0.6": 4}


def test_the_key_is_the_rightmost_entry_and_ipv6_counts_per_64(tmp_path):
    from supagate.supabase_api.edge_functions import _deno_env, deno_binary

    cases = {"203.0.113.9": "ip:203.0.113.9", "6.6.6.6, 203.0.113.9": "ip:203.0.113.9",
             "203.0.113.9,6.6.6.6": "ip:6.6.6.6",
             "2001:DB8:0:0:1::7": "ip:2001:db8:0:0::/64", "2001:db8::ffff:1": "ip:2001:db8:0:0::/64",
             "[2001:db8::1]": "ip:2001:db8:0:0::/64", "2001:db8:0:1::1": "ip:2001:db8:0:1::/64",
             "::ffff:192.0.2.1": "ip:192.0.2.1",
             "": "ip:unknown", "unknown": "ip:unknown", "1.2.3.4:80": "ip:unknown", "010.1.1.1": "ip:unknown",
             "2001:db8::1%eth0": "ip:unknown", "1.2.3.4, ": "ip:unknown"}
    script = tmp_path / "keys.ts"
    script.write_text(f'import {{ clientSubject }} from "{LIMITER.as_uri()}";\n'
                      f"const cases: string[] = {json.dumps(list(cases))};\n"
                      "console.log(JSON.stringify(cases.map((c) => clientSubject(new Headers(c ? "
                      "{ 'x-forwarded-for': c } : {})))));\n")
    done = subprocess.run([deno_binary(), "run", "--allow-read", str(script)], env=_deno_env(), capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert dict(zip(cases, json.loads(done.stdout))) == cases


def _hit(conn, function: str, subject: str) -> tuple[bool, int]:
    return conn.execute("select allowed, remaining from ops.hit_rate_limit(%s, %s)", (function, subject)).fetchone()


def test_a_flood_of_new_keys_stops_at_the_cap(ops_url):
    """max_keys new keys fit in a window; the next new key is refused (429, nothing
    written) until the window ends, while keys already counted keep their quota."""
    policy(ops_url, "flood-fn", limit=3, window=3600, max_keys=20)
    with psycopg.connect(ops_url, autocommit=True) as conn:
        answers = [_hit(conn, "flood-fn", f"ip:198.51.100.{i}") for i in range(50)]
        assert answers[:20] == [(True, 2)] * 20 and answers[20:] == [(False, 0)] * 30
        assert len(counters(ops_url, "flood-fn")) == 20
        assert conn.execute("select keys from ops.rate_windows where function = 'flood-fn'").fetchone() == (20,)
        # The safe twin: a counted key keeps its quota at the cap.
        assert [_hit(conn, "flood-fn", "ip:198.51.100.0") for _ in range(3)] == [(True, 1), (True, 0), (False, 0)]


def test_a_new_window_clears_the_functions_ended_windows(ops_url):
    policy(ops_url, "prune-fn", limit=3)
    policy(ops_url, "other-fn", limit=3)
    with psycopg.connect(ops_url, autocommit=True) as conn:
        conn.execute("insert into ops.rate_counters (key, window_start, request_count) values "
                     "('prune-fn:ip:192.0.2.1', now() - interval '2 hours', 5), "
                     "('other-fn:ip:192.0.2.1', now() - interval '2 hours', 5)")
        conn.execute("insert into ops.rate_windows values ('prune-fn', now() - interval '2 hours', 1)")
        assert _hit(conn, "prune-fn", "ip:192.0.2.2") == (True, 2)
        assert counters(ops_url, "prune-fn") == {"prune-fn:ip:192.0.2.2": 1}
        assert counters(ops_url, "other-fn") == {"other-fn:ip:192.0.2.1": 5}  # another function's rows wait
        assert conn.execute("select count(*) from ops.rate_windows where function = 'prune-fn'").fetchone() == (1,)
