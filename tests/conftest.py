"""Session-wide fixtures shared by every test package."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from azure.data.tables.aio import TableClient, TableServiceClient

if TYPE_CHECKING:  # a plugin (pytest_plugins below): importing it here defeats its rewrite
    from devtools.azurite import AzuriteInfo

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


@pytest.fixture
async def table(azurite: AzuriteInfo) -> AsyncIterator[TableClient]:
    """A new, empty table on Azurite for one test, deleted after it (a module that needs
    another shape defines its own ``table``)."""
    service = TableServiceClient.from_connection_string(azurite.connection_string)
    name = "t" + uuid.uuid4().hex[:16]
    client = await service.create_table(name)
    try:
        yield client
    finally:
        await service.delete_table(name)
        await client.close()
        await service.close()
