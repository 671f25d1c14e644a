"""Session-wide fixtures shared by every test package."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

pytest_plugins = ["devtools.emulator.pytest_plugin", "devtools.azurite"]

ROOT = Path(__file__).resolve().parent.parent
#: The team's read-only reference folder beside the checkout.
REFERENCE = ROOT.parent / "shared"

_INDEXED: dict[str, Any] = {}


def indexed_functions() -> dict[str, Any]:
    """``function_app.app.get_functions()`` by name, indexed once.

    azure.functions validates name uniqueness on every ``get_functions()`` call against the
    functions it already built, so a second call on the same app raises; index once.
    """
    if not _INDEXED:
        from function_app import app

        for fn in app.get_functions():
            _INDEXED[fn.get_function_name()] = fn
    return _INDEXED


@pytest.fixture(scope="session")
def app_functions() -> dict[str, Any]:
    return indexed_functions()


@pytest.fixture(scope="session")
def reference_dir() -> Path:
    if not REFERENCE.is_dir():
        pytest.fail(f"the team's reference folder {REFERENCE} is missing beside the checkout")
    return REFERENCE
