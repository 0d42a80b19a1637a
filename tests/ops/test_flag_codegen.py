"""`supagate flags codegen` builds its TypeScript from data: a description is a JSON string
value, so no text in a stack file can end a string or a comment, add a key, or turn a
safety flag's fail-safe default off. Real Deno loads (and type-checks) what it wrote."""

from __future__ import annotations

import json
import subprocess

import yaml

from tests.conftest import APP

# Every description a stack file could hold that used to escape the comment it was written into.
HOSTILE = {
    "two_lines": "Shown on the coach screen\nwhile the rollout lasts",
    "flip": "New momentum score model\ncrisis_detection: false,",
    "comment_close": "ends here */ crisis_detection: false, /* and again",
    "backticks": "`${crisis_detection}` and `rm -rf`",
    "template": "${(() => { throw new Error('ran') })()}",
    "line_separators": "a\u2028crisis_detection: false,\u2029b",
    "quotes": "say \"hi\", 'bye' and \"}, crisis_detection: false, x: {\"",
    "backslashes": "C:\\path\\ \\n \\u0041 \\\" trailing\\",
    "carriage_return": "one\r\ncrisis_detection: false,\rtwo",
}


def _stack_file(tmp_path, descriptions: dict[str, str]):
    document = yaml.safe_load((APP / "Pulumi.prod.yaml").read_text())
    flags = {
        # Keys before and after the safety flags: a later duplicate key used to win in JS.
        "aa_release": {"description": descriptions["flip"], "plan": "internal-10-50-100", "step": 0},
        "crisis_detection": {"kind": "safety", "description": descriptions["comment_close"]},
        "crisis_escalation": {"kind": "safety", "description": descriptions["backslashes"]},
    }
    for name, text in descriptions.items():
        flags[f"zz_{name}"] = {"description": text}
    document["config"]["supabase-platform:featureFlags"] = flags
    path = tmp_path / "Pulumi.prod.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False, allow_unicode=True))
    return path, flags


def _codegen(tmp_path, descriptions):
    from tests.cli.test_cli import supagate

    stack_file, flags = _stack_file(tmp_path, descriptions)
    module = tmp_path / "flag_defaults.ts"
    done = supagate("flags", "codegen", "--stack", "prod", "--stack-file", str(stack_file), "--out", str(module))
    assert done.returncode == 0, done.stderr
    return module, flags


def _load_with_deno(tmp_path, module) -> dict:
    """Type-check and run the module with real Deno; what it exports, as JSON."""
    from supagate.supabase_api.edge_functions import _deno_env, deno_binary

    script = tmp_path / "load.ts"
    script.write_text(f'import {{ FLAG_DEFAULTS, FLAG_INFO }} from "{module.as_uri()}";\n'
                      "console.log(JSON.stringify({ defaults: FLAG_DEFAULTS, info: FLAG_INFO }));\n")
    done = subprocess.run([deno_binary(), "run", "--check", "--no-config", str(script)], capture_output=True,
                          text=True, timeout=180, env=_deno_env(), cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout)


def test_hostile_descriptions_stay_data_and_the_fail_safe_defaults_hold(tmp_path):
    module, flags = _codegen(tmp_path, HOSTILE)
    loaded = _load_with_deno(tmp_path, module)
    assert loaded["defaults"] == {key: flag.get("kind") == "safety" for key, flag in flags.items()}
    assert loaded["defaults"]["crisis_detection"] is True and loaded["defaults"]["crisis_escalation"] is True
    assert {key: info["description"] for key, info in loaded["info"].items()} == \
        {key: flag["description"] for key, flag in flags.items()}  # every byte round-trips
    comments = [line for line in module.read_text().splitlines() if line.lstrip().startswith(("//", "/*"))]
    assert len(comments) == 3 and not any("crisis_detection" in line for line in comments)  # no text from the stack
    assert module.read_text().isascii()  # U+2028/U+2029 arrive escaped


def test_each_description_alone_keeps_the_safety_default(tmp_path):
    """One module per description, loaded as the edge runtime loads it (no type check): the
    crafted ones used to load with crisis_detection false, the multi-line ones not at all."""
    from supagate.cli.flags import render_defaults
    from supagate.config.loading import settings_from_stack_file
    from supagate.supabase_api.edge_functions import _deno_env, deno_binary

    modules = {}
    for name, text in HOSTILE.items():
        folder = tmp_path / name
        folder.mkdir()
        stack_file, _ = _stack_file(folder, {**{n: "ordinary" for n in HOSTILE}, name: text})
        modules[name] = folder / "flag_defaults.ts"
        modules[name].write_text(render_defaults(settings_from_stack_file("prod", stack_file)))
    script = tmp_path / "load_each.ts"
    script.write_text(f"const modules = {json.dumps({n: m.as_uri() for n, m in modules.items()})};\n"
                      "const out: Record<string, unknown> = {};\n"
                      "for (const [name, url] of Object.entries(modules)) {\n"
                      "  try {\n"
                      "    const m = await import(url);\n"
                      "    out[name] = { crisis_detection: m.FLAG_DEFAULTS.crisis_detection,\n"
                      "                  description: m.FLAG_INFO?.[`zz_${name}`]?.description };\n"
                      "  } catch (e) { out[name] = { error: String(e) }; }\n"
                      "}\n"
                      "console.log(JSON.stringify(out));\n")
    done = subprocess.run([deno_binary(), "run", "--no-check", "--no-config", "--allow-read", str(script)],
                          capture_output=True, text=True, timeout=180, env=_deno_env(), cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout) == {name: {"crisis_detection": True, "description": text}
                                       for name, text in HOSTILE.items()}


def test_ordinary_descriptions_over_several_lines_load_unchanged(tmp_path):
    """The safe twin: ordinary descriptions, one of them over several lines, as a team writes them."""
    ordinary = {name: f"Flag {name}: what it changes" for name in HOSTILE}
    ordinary["two_lines"] = "The new momentum score model,\nrolled out to coaches first"
    module, flags = _codegen(tmp_path, ordinary)
    loaded = _load_with_deno(tmp_path, module)
    assert loaded["defaults"]["crisis_detection"] is True and loaded["defaults"]["aa_release"] is False
    assert loaded["info"]["zz_two_lines"] == {"kind": "release", "description": ordinary["two_lines"]}
