"""The domain modules are pure: they import nothing from azure (house rule 1)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PURE = [
    *sorted((ROOT / "shared" / "events").glob("*.py")),
    *sorted((ROOT / "shared" / "dependents").glob("*.py")),
    *sorted((ROOT / "shared" / "settings").glob("*.py")),
]


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return found


@pytest.mark.parametrize("path", PURE, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_module_imports_nothing_from_azure(path: Path) -> None:
    azure = {m for m in _imports(path) if m == "azure" or m.startswith("azure.")}
    assert not azure


def test_importing_the_domain_loads_no_azure_module() -> None:
    code = (
        "import sys, shared.events, shared.dependents, shared.settings; "
        "bad = [m for m in sys.modules if m == 'azure' or m.startswith('azure.')]; "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
