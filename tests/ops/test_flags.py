"""Feature flags in the database: bucketing v1 agrees in SQL, Deno and Python on 1,000
golden vectors (and with sha256sum on a few), is monotone and evenly spread; signed-out
callers are off at partial steps; the salt never changes; safety flags refuse every way
off; ops.apply_flag refuses a skipped step, an early step and a step under a firing guard,
and allows going back; auto rollouts advance and step back with the clock the test drives."""

from __future__ import annotations

import json
import subprocess
from datetime import datetime, timedelta, timezone
from pathlib import Path

import psycopg
import pytest

from supagate.ops.flags import bucket, enabled
from tests.conftest import ROOT

VECTORS = json.loads((Path(__file__).parent / "flag_vectors.json").read_text(encoding="utf-8"))["vectors"]


def test_python_matches_the_golden_vectors():
    assert len(VECTORS) == 1000
    assert [bucket(v["salt"], v["subject"]) for v in VECTORS] == [v["bucket"] for v in VECTORS]


def test_an_independent_sha256_agrees():
    for vector in VECTORS[::250]:
        data = f"{vector['salt']}:{vector['subject']}".encode()
        hex_digest = subprocess.run(["sha256sum"], input=data, capture_output=True, check=True).stdout[:8]
        assert int(hex_digest, 16) % 10000 == vector["bucket"]


def test_sql_matches_the_golden_vectors(ops_url):
    with psycopg.connect(ops_url, autocommit=True) as conn:
        rows = conn.execute("select v ->> 'salt', v ->> 'subject', (v ->> 'bucket')::int, "
                            "ops.flag_bucket(v ->> 'salt', v ->> 'subject') "
                            "from jsonb_array_elements(%s::jsonb) v", (json.dumps(VECTORS),)).fetchall()
    wrong = [r for r in rows if r[2] != r[3]]
    assert len(rows) == 1000 and wrong == []


def test_deno_matches_the_golden_vectors(tmp_path):
    from supagate.supabase_api.edge_functions import _deno_env, deno_binary

    module = ROOT / "supagate" / "ops" / "deno" / "flags.ts"
    script = tmp_path / "check.ts"
    script.write_text(
        f'import {{ bucket, enabled }} from "{module.as_uri()}";\n'
        f'const vectors = JSON.parse(await Deno.readTextFile("{(Path(__file__).parent / "flag_vectors.json")}")).vectors;\n'
        "let wrong = 0;\n"
        "for (const v of vectors) { if ((await bucket(v.salt, v.subject)) !== v.bucket) wrong++; }\n"
        "if (await enabled('k', null, 5000) || await enabled('k', '', 5000) || !(await enabled('k', null, 10000))) wrong++;\n"
        "console.log(JSON.stringify({checked: vectors.length, wrong}));\n")
    done = subprocess.run([deno_binary(), "run", "--allow-read", str(script)], capture_output=True, text=True,
                          timeout=120, env=_deno_env())
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"checked": 1000, "wrong": 0}


def test_the_deno_module_is_the_one_the_test_app_ships():
    from tests.conftest import APP

    assert (APP / "supabase" / "functions" / "_shared" / "supagate_flags.ts").read_text() == \
        (ROOT / "supagate" / "ops" / "deno" / "flags.ts").read_text()


def test_monotone_and_evenly_spread(ops_url):
    subjects = [f"user-{i}" for i in range(10000)]
    for low, high in ((500, 1000), (1000, 2500), (2500, 5000), (5000, 9999)):
        assert all(enabled("m", s, high) for s in subjects if enabled("m", s, low))  # raising only adds users
    with psycopg.connect(ops_url, autocommit=True) as conn:
        for percent in (5, 10, 25, 50):
            share = conn.execute("select avg((ops.flag_bucket('spread', 'user-' || i) < %s)::int) * 100 "
                                 "from generate_series(1, 10000) i", (percent * 100,)).fetchone()[0]
            assert abs(float(share) - percent) < 1.5, (percent, share)


def _flag(conn, key, **columns):
    values = {"kind": "release", "salt": key, "enabled": True, "steps": [10000], "step": 0, **columns}
    names = ", ".join(values)
    conn.execute(f"insert into ops.flags (key, {names}) values (%s, {', '.join(['%s'] * len(values))})",
                 [key, *values.values()])


def test_evaluation_order_and_signed_out_callers(ops_url):
    with psycopg.connect(ops_url, autocommit=True) as conn:
        _flag(conn, "eval_half", steps=[5000])
        _flag(conn, "eval_internal", steps=[-1, 10000])
        _flag(conn, "eval_coaches", audience="coaches")
        _flag(conn, "eval_off", enabled=False)
        conn.execute("insert into ops.flag_members values ('eval_internal', '00000000-0000-4000-a000-00000000000a')")

        def ev(key, subject, audience="everyone"):
            return conn.execute("select enabled, reason from ops.flag_evaluate(%s, %s, %s)",
                                (key, subject, audience)).fetchone()

        inside = next(f"u{i}" for i in range(100) if bucket("eval_half", f"u{i}") < 5000)
        outside = next(f"u{i}" for i in range(100) if bucket("eval_half", f"u{i}") >= 5000)
        assert ev("eval_half", inside) == (True, "SPLIT") and ev("eval_half", outside) == (False, "SPLIT")
        assert ev("eval_half", None) == (False, "DEFAULT") and ev("eval_half", "") == (False, "DEFAULT")
        assert ev("eval_internal", "00000000-0000-4000-a000-00000000000a") == (True, "TARGETING_MATCH")
        assert ev("eval_internal", inside) == (False, "DEFAULT")
        assert ev("eval_coaches", inside, "members") == (False, "TARGETING_MATCH")
        assert ev("eval_coaches", inside, "coaches") == (True, "STATIC")
        assert ev("eval_off", inside) == (False, "DISABLED")
        assert ev("no_such_flag", inside) == (False, "ERROR")


def test_the_salt_never_changes(ops_url):
    with psycopg.connect(ops_url, autocommit=True) as conn:
        _flag(conn, "salted")
        with pytest.raises(psycopg.errors.RaiseException, match="salt and bucketing version never change"):
            conn.execute("update ops.flags set salt = 'reshuffle' where key = 'salted'")


@pytest.mark.parametrize("change", [
    "update ops.flags set enabled = false where key = 'crisis_guarded'",
    "update ops.flags set paused = true where key = 'crisis_guarded'",
    "update ops.flags set steps = '{5000}' where key = 'crisis_guarded'",
    "update ops.flags set audience = 'coaches' where key = 'crisis_guarded'",
    "update ops.flags set kind = 'release' where key = 'crisis_guarded'",
    "delete from ops.flags where key = 'crisis_guarded'",
    "insert into ops.flags (key, kind, salt, enabled) values ('crisis_new_off', 'safety', 'x', false)",
])
def test_the_database_refuses_every_way_to_switch_a_safety_flag_off(ops_url, change):
    with psycopg.connect(ops_url, autocommit=True) as conn:
        conn.execute("insert into ops.flags (key, kind, salt, enabled) values ('crisis_guarded', 'safety', "
                     "'crisis_guarded', true) on conflict do nothing")
        with pytest.raises(psycopg.errors.RaiseException, match="safety flag"):
            conn.execute(change)
        assert conn.execute("select enabled from ops.flag_evaluate('crisis_guarded', 'u1')").fetchone() == (True,)


def _plan(key, step, soak="86400 seconds", guards=(), steps=(500, 2500, 5000, 10000), advance="manual"):
    return json.dumps({"key": key, "kind": "release", "enabled": True, "steps": list(steps), "step": step,
                       "soak": soak, "paused": False, "advance": advance, "guards": list(guards)})


def test_apply_flag_moves_one_step_after_the_soak_with_quiet_guards(ops_url):
    with psycopg.connect(ops_url, autocommit=True) as conn:
        apply = "select ops.apply_flag(%s::jsonb, %s)"
        assert conn.execute(apply, (_plan("canary", 0, guards=["canary-guard"]), False)).fetchone() == \
            ("create canary at step 0",)
        with pytest.raises(psycopg.errors.RaiseException, match="step 0 -> 2 skips a step"):
            conn.execute(apply, (_plan("canary", 2), True))
        with pytest.raises(psycopg.errors.RaiseException) as early:
            conn.execute(apply, (_plan("canary", 1, guards=["canary-guard"]), True))
        assert "step 1 can start at" in str(early.value) and "left" in str(early.value)
        conn.execute("update ops.flags set step_entered_at = now() - interval '25 hours' where key = 'canary'")
        conn.execute("insert into ops.alert_state (rule, state) values ('canary-guard', 'firing') "
                     "on conflict (rule) do update set state = 'firing'")
        with pytest.raises(psycopg.errors.RaiseException, match="guard rule\\(s\\) canary-guard firing"):
            conn.execute(apply, (_plan("canary", 1, guards=["canary-guard"]), True))
        conn.execute("update ops.alert_state set state = 'inactive' where rule = 'canary-guard'")
        assert conn.execute(apply, (_plan("canary", 1, guards=["canary-guard"]), True)).fetchone() == \
            ("advance canary to step 1",)
        assert conn.execute("select step from ops.flags where key = 'canary'").fetchone() == (0,)  # a dry run
        conn.execute(apply, (_plan("canary", 1, guards=["canary-guard"]), False))
        conn.execute("update ops.flags set step = 3, step_entered_at = now() where key = 'canary'")
        assert conn.execute(apply, (_plan("canary", 0), False)).fetchone() == ("step canary back to step 0",)
        events = conn.execute("select detail from ops.flag_events where flag_key = 'canary' order by id").fetchall()
    assert events == [("advance canary to step 1",), ("step canary back to step 0",)]


def test_auto_rollouts_advance_after_the_soak_and_step_back_on_a_firing_guard(ops_url):
    t0 = datetime(2035, 1, 1, tzinfo=timezone.utc)
    with psycopg.connect(ops_url, autocommit=True) as conn:
        _flag(conn, "auto_roll", steps=[500, 2500, 10000], soak=timedelta(hours=24), advance="auto",
              guards=["auto-guard"], step_entered_at=t0)
        advance = "select flag, event from ops.advance_rollouts(%s) where flag = 'auto_roll'"
        assert conn.execute(advance, (t0 + timedelta(hours=23),)).fetchall() == []
        assert conn.execute(advance, (t0 + timedelta(hours=24),)).fetchall() == [("auto_roll", "advanced to step 1")]
        conn.execute("insert into ops.alert_state (rule, state) values ('auto-guard', 'firing') "
                     "on conflict (rule) do update set state = 'firing'")
        assert conn.execute(advance, (t0 + timedelta(hours=25),)).fetchall() == \
            [("auto_roll", "stepped back to step 0: a guard is firing")]
        # A stack update does not fight the position an auto rollout reached.
        outcome = conn.execute("select ops.apply_flag(%s::jsonb, false)",
                               (_plan("auto_roll", 2, steps=(500, 2500, 10000), advance="auto"),)).fetchone()
        assert outcome == ("keep auto_roll at step 0",)


def test_codegen_defaults_fail_safe_and_explain_agrees_with_the_database(ops_url, tmp_path):
    from tests.cli.test_cli import supagate
    from tests.conftest import APP

    out = tmp_path / "flag_defaults.ts"
    done = supagate("flags", "codegen", "--stack", "prod", "--stack-file", str(APP / "Pulumi.prod.yaml"), "--out", str(out))
    assert done.returncode == 0, done.stderr
    text = out.read_text()
    assert '  "crisis_detection": true,' in text and '  "momentum_v2": false' in text

    user = "0b5e7c1e-0000-4000-8000-000000000001"
    explained = supagate("flags", "explain", "momentum_v2", "--user", user, "--stack", "prod", "--stack-file",
                         str(APP / "Pulumi.prod.yaml"), "--format", "json")
    report = json.loads(explained.stdout)
    assert report["bucket"] == bucket("momentum_v2", user) and report["at"] == "10%"
    with psycopg.connect(ops_url, autocommit=True) as conn:
        conn.execute("insert into ops.flags (key, salt, enabled, steps, step) values ('momentum_v2', 'momentum_v2', "
                     "true, '{-1,1000,5000,10000}', 1) on conflict do nothing")
        in_db = conn.execute("select enabled from ops.flag_evaluate('momentum_v2', %s)", (user,)).fetchone()[0]
    assert report["value"] == in_db
