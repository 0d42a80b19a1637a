"""The example app's edge functions and their config.toml entries."""

import re
import tomllib

from tests.conftest import APP, ROOT

FUNCTIONS = APP / "supabase" / "functions"


def config():
    return tomllib.loads((APP / "supabase" / "config.toml").read_text())


def slugs():
    return sorted(p.name for p in FUNCTIONS.iterdir() if p.is_dir() and not p.name.startswith("_"))


def test_every_function_folder_has_a_config_entry_with_its_entrypoint():
    functions = config()["functions"]
    assert slugs() == sorted(functions) == ["flags", "health-check", "job-worker", "momentum-score-calculator",
                                            "webhook-terra"]
    for slug, entry in functions.items():
        assert (APP / "supabase" / entry["entrypoint"]).is_file(), slug


def test_verify_jwt_is_on_except_for_the_signed_webhook():
    functions = config()["functions"]
    assert {slug: entry["verify_jwt"] for slug, entry in functions.items()} == {
        "flags": True, "health-check": True, "job-worker": True, "momentum-score-calculator": True,
        "webhook-terra": False}
    webhook = (FUNCTIONS / "webhook-terra" / "index.ts").read_text()
    assert "terra-signature" in webhook and "HMAC" in webhook and "401" in webhook


def test_functions_import_only_from_npm_or_relative_paths():
    for source in FUNCTIONS.rglob("*.ts"):
        for spec in re.findall(r'from\s+"([^"]+)"', source.read_text()):
            assert spec.startswith(("npm:", "./", "../")), f"{source}: {spec}"


def test_exposed_schemas_match_the_stack_default():
    assert config()["api"]["schemas"] == ["public", "graphql_public"]
