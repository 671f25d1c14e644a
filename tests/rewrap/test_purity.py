"""shared/rewrap is pure domain code: no Azure imports, no key material in reprs."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from shared.crypto import DataKey, WrapAlgorithm
from shared.rewrap import ItemIssue, ItemOutcome
from shared.stores import DekRecord, Rewrap

REWRAP = Path(__file__).resolve().parents[2] / "shared" / "rewrap"


def test_rewrap_modules_import_nothing_from_azure() -> None:
    files = sorted(REWRAP.glob("*.py"))
    assert len(files) >= 10
    for path in files:
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            assert not [n for n in names if n.split(".")[0] == "azure"], path.name


def test_importing_the_engine_loads_no_azure_module() -> None:
    code = (
        "import sys, shared.rewrap; "
        "bad = [m for m in sys.modules if m.split('.')[0] == 'azure']; "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REWRAP.parents[1], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_reprs_of_what_the_engine_passes_around_hold_no_key_material() -> None:
    material = bytes(range(32))
    dek = DataKey(material)
    record = DekRecord(
        "p/r", "p", "1", "https://k/keys/a/" + "1" * 32, WrapAlgorithm.RSA_OAEP_256, b"w" * 256
    )
    rewrap = Rewrap(
        record, "https://k/keys/a/" + "2" * 32, WrapAlgorithm.RSA_OAEP_256, b"x" * 256, dek.kcv
    )
    issue = ItemIssue("p/r", ItemOutcome.FAILED, "integrity", record.key_id, "kcv")
    for text in (repr(dek), repr(record), repr(rewrap), repr(issue)):
        assert material.hex() not in text
        assert repr(material) not in text
