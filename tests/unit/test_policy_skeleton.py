"""The policy pack skeleton: its one policy recomputes checksums from the SQL inputs."""

import hashlib
import sys
from types import SimpleNamespace

from tests.conftest import ROOT

sys.path.insert(0, str(ROOT / "policies"))
import migration_checksums  # noqa: E402


def run(props):
    found = []
    migration_checksums.validate(SimpleNamespace(resource_type=migration_checksums.MIGRATIONS_TYPE, props=props),
                                 found.append)
    return found


def test_matching_checksum_passes_and_a_forged_one_is_a_violation():
    sql = "create table a (id int);"
    good = {"version": "1", "name": "a", "sql": sql, "checksum": hashlib.sha256(sql.encode()).hexdigest()}
    assert run({"migrations": [good]}) == []
    forged = {**good, "sql": "drop table a;"}
    assert "checksum does not match" in run({"migrations": [forged]})[0]
