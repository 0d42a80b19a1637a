"""Shared fixtures: one throwaway PostgreSQL 15 cluster per test session, a fresh
database (Supabase-shaped) per test that needs one, and the product's test app.

The tests never read the repository's own `supabase/` or stack files (an adopting team
replaces them): APP is the test app under tests/fixtures, and PROJECT a copy of the
product (program, components, pack) with that app, where CLI commands run."""

from __future__ import annotations

import itertools
import os
import shutil
from pathlib import Path

import subprocess

import pytest

ROOT = Path(__file__).resolve().parent.parent
APP = ROOT / "tests" / "fixtures" / "momentum"
APP_MIGRATIONS = APP / "supabase" / "migrations"
_counter = itertools.count()


def _project() -> Path:
    """The product with the test app in place of the repository's own, built once per run."""
    import atexit
    import tempfile

    root = Path(tempfile.mkdtemp(prefix="supagate-project-")) / "project"
    root.mkdir()
    atexit.register(shutil.rmtree, root.parent, True)
    for name in ("Pulumi.yaml", "__main__.py", "pyproject.toml"):
        shutil.copy(ROOT / name, root / name)
    for folder in ("components", "policies"):
        shutil.copytree(ROOT / folder, root / folder, ignore=shutil.ignore_patterns(".venv", "__pycache__", "config"))
    for folder in ("supabase", ".github", "policies/config"):
        shutil.copytree(APP / folder, root / folder)
    for stack in APP.glob("Pulumi.*.yaml"):
        shutil.copy(stack, root / stack.name)
    if (ROOT / "node_modules").exists():
        (root / "node_modules").symlink_to(ROOT / "node_modules")
    return root


PROJECT = _project()


@pytest.fixture(scope="session")
def cluster():
    from supagate.postgres.embedded import EmbeddedPostgres

    with EmbeddedPostgres() as pg:
        yield pg


@pytest.fixture
def db_url(cluster) -> str:
    return cluster.create_database(f"t{os.getpid()}_{next(_counter)}")


@pytest.fixture(scope="session")
def supabase_cli() -> str:
    """The pinned Supabase CLI from node_modules (installed by .ci/run)."""
    candidate = ROOT / "node_modules" / ".bin" / "supabase"
    found = str(candidate) if candidate.exists() else shutil.which("supabase")
    if not found:
        pytest.fail("the Supabase CLI is not installed: run `npm ci` (the pinned supabase@3.1.0)")
    return found


def url_with(url: str, **params: str) -> str:
    """`url` with query parameters added: a local cluster's URL already has one (its passfile)."""
    from urllib.parse import quote, urlencode

    return url + ("&" if "?" in url else "?") + urlencode(params, quote_via=quote)


def write_migrations(directory: Path, files: dict[str, str]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, sql in files.items():
        path = directory / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(sql)
    return directory


@pytest.fixture
def app_db_url():
    """A whole fresh cluster: the app's pg_cron schedules need the `postgres` database,
    which pg_cron is tied to, so tests applying the app get a cluster of their own."""
    from supagate.postgres.embedded import EmbeddedPostgres

    with EmbeddedPostgres() as pg:
        yield pg.url


# The real policy pack, in a virtualenv built from scratch from policies/pyproject.toml (as
# the engine's uv toolchain does), started as `python -m pulumi.policy` and configured
# with policies/config/<stack>.json over gRPC.

@pytest.fixture(scope="session")
def pack_python(tmp_path_factory) -> str:
    venv = tmp_path_factory.mktemp("policy-pack") / "venv"
    done = subprocess.run(["uv", "sync", "--locked", "--compile-bytecode", "--project", str(ROOT / "policies")],
                          capture_output=True, text=True, env={**os.environ, "UV_PROJECT_ENVIRONMENT": str(venv)},
                          timeout=600)
    assert done.returncode == 0, done.stderr
    return str(venv / "bin" / "python")


@pytest.fixture(scope="module", params=["staging", "prod"])
def pack(request, pack_python):
    from supagate.pack.host import PolicyPack, load_pack_config

    stack = request.param
    with PolicyPack(ROOT / "policies", python=pack_python, stack=stack) as running:
        levels = running.configure(load_pack_config(APP / "policies" / "config" / f"{stack}.json"))
        yield stack, running, levels
