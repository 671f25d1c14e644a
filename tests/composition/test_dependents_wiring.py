"""The composition root builds each client once and the key-dependent services share them.

Before issue 10 the Face service built a second state ``TableClient`` (repeating the table
name), a second Key Vault adapter with its own transport, and an ARM client per adapter.
These tests build a real ``AppContext`` over Azurite (no Azure call is made while building)
and check that the Face kind's parts are the context's own clients.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from devtools.azurite import AzuriteInfo
from shared.composition import AppContext
from shared.services._ports import FlagsPage
from shared.settings import Settings

pytestmark = pytest.mark.azurite
SUBSCRIPTION = "0f5a3c2e-1111-4222-8333-944455556666"


class _Credential:
    """Never asked for a token: building the context makes no authenticated call."""

    async def get_token(self, *scopes: str, **kwargs: Any) -> Any:
        raise AssertionError("no token is needed to build the context")

    async def close(self) -> None:
        return None


def _settings(azurite: AzuriteInfo, **extra: str) -> Settings:
    suffix = uuid.uuid4().hex[:10]
    return Settings.from_env({
        "KEYWARD_VAULT_ALLOWLIST": "contoso-kv",
        "AzureWebJobsStorage": azurite.connection_string,
        "KEYWARD_DEK_TABLE": f"deks{suffix}",
        "KEYWARD_JOB_QUEUE": f"keyward-{suffix}",
        **extra,
    })  # fmt: skip


def _private(obj: object, *path: str) -> Any:
    """Follow private attributes (what the test pins is identity, not an API)."""
    for name in path:
        obj = getattr(obj, name)
    return obj


async def test_the_face_kind_shares_the_contexts_clients(azurite: AzuriteInfo) -> None:
    settings = _settings(azurite, KEYWARD_FACE_SUBSCRIPTIONS=SUBSCRIPTION)
    context = await AppContext.build(settings, credential=_Credential())  # type: ignore[arg-type]
    try:
        (service,) = _private(context.dependents, "services")
        assert service.kind.name == "face"
        # One state TableClient: job store, event ledger and Face flags use the same one.
        assert _private(service, "_journal", "_table") is context.state_table
        assert _private(context.ledger, "_table") is context.state_table
        assert _private(context.job_store("table:x"), "_table") is context.state_table
        # One Key Vault adapter: the key-access reader reads metadata through the context's.
        assert _private(service, "_reader", "_keys", "_keyvault") is context.keys
        # ...and key administration (list keys, rotate) uses that adapter's vault clients.
        assert _private(context.key_admin, "_adapter") is context.keys
        vault = settings.vault_allowlist.vaults[0].url
        assert context.key_admin._adapter.vault_key_client(vault) is context.keys.vault_key_client(  # type: ignore[attr-defined]
            vault
        )
        # One ARM client set for the inventory (Resource Graph and its per-subscription
        # fallback), the writer and the key-access reader.
        arm = _private(service, "_reader", "_arm")
        assert _private(service.kind.inventory, "_graph", "_arm") is arm
        assert _private(service.kind.inventory, "_fallback", "_arm") is arm
        assert _private(service.kind.writer, "_arm") is arm
        assert context.dependents.graph is _private(service.kind.inventory, "_graph")
    finally:
        await context.aclose()


async def test_without_face_the_status_keeps_its_face_flags_key(azurite: AzuriteInfo) -> None:
    context = await AppContext.build(_settings(azurite), credential=_Credential())  # type: ignore[arg-type]
    try:
        assert _private(context.dependents, "services") == ()
        assert await context.dependents.status(10) == {"face_flags": FlagsPage()}
        page = await context.admin().status()
        assert (page["face_flags"], page["face_flags_more"]) == ([], False)
    finally:
        await context.aclose()
