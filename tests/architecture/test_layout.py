"""The layout keeps the architecture visible: no import cycle inside supagate, small
modules, few files at the top, and a CLI that imports only what a command needs."""

from __future__ import annotations

import ast
import re
import json
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT, write_migrations

PACKAGE = ROOT / "supagate"
MAX_LINES = 450
MAX_TOP_LEVEL_FILES = 8


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """Every supagate module this file imports at run time (inside functions too, not
    under `if TYPE_CHECKING`)."""
    tree = ast.parse(path.read_text())
    skipped = {id(n) for node in ast.walk(tree) if isinstance(node, ast.If)
               and "TYPE_CHECKING" in ast.unparse(node.test) for n in ast.walk(node)}
    found = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("supagate"):
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("supagate"))
    return found


def _graph() -> dict[str, set[str]]:
    modules = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph = {}
    for name, path in modules.items():
        targets = set()
        for imported in _imports(path):
            if imported in modules and imported != name:
                targets.add(imported)
        graph[name] = targets
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for target in sorted(graph.get(node, ())):
            if state.get(target) == 1:
                return stack[stack.index(target):] + [target]
            if target not in state:
                found = visit(target)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def test_no_import_cycle_inside_supagate():
    assert _cycle(_graph()) is None, " -> ".join(_cycle(_graph()))


def test_the_cycle_finder_finds_a_cycle():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def test_modules_are_small_and_the_top_level_is_short():
    long = {str(p.relative_to(ROOT)): n for p in PACKAGE.rglob("*.py")
            if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert long == {}
    top = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert len(top) <= MAX_TOP_LEVEL_FILES, top


def _modules_after(code: str) -> set[str]:
    done = subprocess.run([sys.executable, "-c", code + "\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"],
                          capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert done.returncode == 0, done.stderr
    return set(json.loads(done.stdout.splitlines()[-1]))


def test_cli_start_up_imports_no_command_and_no_heavy_library():
    loaded = _modules_after("import supagate.cli\nsupagate.cli.build_parser()")
    heavy = {"psycopg", "pglast", "pydantic", "pulumi", "httpx", "yaml"}
    assert not heavy & {m.split(".")[0] for m in loaded}
    assert not {m for m in loaded if m.startswith(("supagate.gates", "supagate.pack", "supagate.offline"))}
    one = _modules_after("import supagate.cli\nsupagate.cli.build_parser(['-q', 'migrate', '--dry-run'])")
    assert {m for m in one if m.startswith("supagate.cli.")} == {"supagate.cli.common", "supagate.cli.migrate"}


def test_each_command_is_built_alone_under_its_own_name():
    """build_parser builds only the named command: each module registers exactly its name."""
    import argparse

    from supagate.cli import COMMANDS, build_parser

    def choices(argv):
        return list(next(a for a in build_parser(argv)._actions
                         if isinstance(a, argparse._SubParsersAction)).choices)

    names = list(COMMANDS)
    for name in names:
        assert choices(["-q", name, "--help"]) == [name]
    assert choices(["--help"]) == names == choices(["no-such-command"])


def test_migrate_path_never_imports_the_gates_the_settings_models_or_the_parser(db_url, tmp_path):
    """A deploy of a few files waits on start-up: the migrate path loads the one database
    driver and nothing of the analysis (a plain file never starts pglast)."""
    src = write_migrations(tmp_path, {"20240101000000_a.sql": "create table a (id int);"})
    loaded = _modules_after(
        "import contextlib, io\nfrom supagate.cli import main\n"
        f"with contextlib.redirect_stderr(io.StringIO()):\n"
        f"    assert main(['migrate', '--db-url', {db_url!r}, '--migrations', {str(src)!r}, '--dry-run']) == 0\n"
        f"    assert main(['migrate', '--db-url', {db_url!r}, '--migrations', {str(src)!r}]) == 0")
    assert "psycopg" in loaded  # it did reach the database
    assert not {m for m in loaded if m.startswith(("supagate.gates", "supagate.config", "pydantic", "pulumi",
                                                   "supagate.pack", "httpx", "pglast"))}


def test_the_console_entry_skips_teardown_but_runs_exit_handlers_and_flushes():
    """entry() leaves with os._exit (teardown costs ~40 ms once psycopg is loaded); what the
    exit handlers do (stop a throwaway cluster) and what was printed must not be lost."""
    code = ("import atexit, sys\nfrom supagate import cli\n"
            "atexit.register(lambda: print('handler ran', file=sys.stderr))\n"
            "print('x' * 200000, end='')\nsys.argv = ['supagate', 'migrate', '--no-such-flag']\ncli.entry()")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert done.returncode == 2 and len(done.stdout) == 200000
    assert "unrecognized arguments" in done.stderr and done.stderr.rstrip().endswith("handler ran")


def test_version_answers_without_loading_any_command():
    done = subprocess.run([sys.executable, "-m", "supagate.cli", "--version"], capture_output=True, text=True,
                          cwd=ROOT, timeout=60)
    assert done.returncode == 0 and done.stdout.strip() == "supagate 0.1.0"


# The product's tests read tests/fixtures, never the example app in the repository root
# (supabase/, Pulumi.<stack>.yaml), so a team that replaces those with their own keeps a
# green suite. Pulumi.yaml is the product's and may be read.
EXAMPLE_READ = re.compile(r'ROOT\s*/\s*f?"(supabase\b|Pulumi\.(?!yaml")[^"]*)')


def test_the_products_tests_do_not_read_the_example_app():
    readers = {str(path.relative_to(ROOT)) for path in (ROOT / "tests").rglob("*.py")
               if path != Path(__file__) and EXAMPLE_READ.search(path.read_text())}
    assert not readers, f"read the example app instead of tests/fixtures: {sorted(readers)}"
    assert EXAMPLE_READ.search('ROOT / "supabase" / "migrations"') and EXAMPLE_READ.search('ROOT / f"Pulumi.{stack}.yaml"')
    assert not EXAMPLE_READ.search('ROOT / "Pulumi.yaml"')


def test_a_plain_deploy_does_not_load_the_sql_parser(tmp_path):
    """Start-up is most of a small deploy's time: reading plain migration files must not
    import pglast (about 0.1 s); only a file with a special statement needs it."""
    (tmp_path / "20250101000000_a.sql").write_text("create table public.a (id int primary key);\n"
                                                    "alter table public.a enable row level security;\n")
    probe = ("import sys\nfrom pathlib import Path\nimport supagate.migrations.runner\n"
             "from supagate.migrations.files import load_migrations\n"
             f"load_migrations(Path({str(tmp_path)!r}))\nprint('pglast' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT)
    assert done.stdout.strip() == "False", done.stderr
