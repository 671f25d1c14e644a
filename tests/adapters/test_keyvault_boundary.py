"""Only the Key Vault adapter's modules import ``azure.keyvault`` (house rule 3)."""

from __future__ import annotations

import ast
from pathlib import Path

SHARED = Path(__file__).resolve().parents[2] / "shared"
ADAPTER_MODULES = {"keyvault.py"} | {p.name for p in (SHARED / "adapters").glob("_keyvault_*.py")}
#: Known exceptions, each with its reason (none: key listing and rotation moved into the
#: adapter as ``_keyvault_admin.py``).
KNOWN_EXCEPTIONS: set[str] = set()


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return found


def test_only_the_adapter_imports_azure_keyvault() -> None:
    offenders = []
    for path in sorted(SHARED.rglob("*.py")):
        if path.parent.name == "adapters" and path.name in ADAPTER_MODULES | KNOWN_EXCEPTIONS:
            continue
        if any(m == "azure.keyvault" or m.startswith("azure.keyvault.") for m in _imports(path)):
            offenders.append(str(path.relative_to(SHARED)))
    assert not offenders


def test_known_exceptions_still_exist() -> None:
    """An exception that no longer applies must be removed from the list."""
    for name in KNOWN_EXCEPTIONS:
        path = SHARED / "adapters" / name
        assert path.exists(), f"{name} is gone: drop it from KNOWN_EXCEPTIONS"
        assert any(m.startswith("azure.keyvault") for m in _imports(path)), name


def test_importing_shared_adapters_does_not_import_the_sdk() -> None:
    import subprocess
    import sys

    code = (
        "import sys, shared.adapters; "
        "bad = [m for m in sys.modules if m.startswith('azure.keyvault')]; "
        "sys.exit(1 if bad else 0)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=SHARED.parent, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
