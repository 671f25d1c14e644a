"""shared/crypto is pure: it imports nothing from azure (house rule 1)."""

from __future__ import annotations

import ast
from pathlib import Path

CRYPTO = Path(__file__).resolve().parents[2] / "shared" / "crypto"


def _imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return found


def test_crypto_modules_import_nothing_from_azure() -> None:
    files = sorted(CRYPTO.glob("*.py"))
    assert len(files) >= 5
    for path in files:
        azure = {m for m in _imported_modules(path) if m == "azure" or m.startswith("azure.")}
        assert not azure, f"{path.name} imports {azure}"


def test_importing_crypto_loads_no_azure_module() -> None:
    import subprocess
    import sys

    code = (
        "import sys, shared.crypto; "
        "bad = [m for m in sys.modules if m == 'azure' or m.startswith('azure.')]; "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    root = CRYPTO.parents[1]
    result = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
