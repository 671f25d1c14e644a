"""A rotation event for a version the vault does not have costs one ``versions`` listing,
not two (issue 11 follow-up): ``resolve_target`` lists first and refuses on that listing,
through the real Key Vault adapter against the emulator.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from shared.adapters import AsyncKeyVaultAdapter
from shared.crypto import VaultAllowList
from shared.rewrap import RewrapTargetError, TargetVersionNotFoundError, resolve_target

pytestmark = pytest.mark.emulator

UNKNOWN = "0" * 32


class CountingAdapter(AsyncKeyVaultAdapter):
    """The real adapter, counting its version listings (``newest_enabled_version`` lists
    through ``versions`` too, so every listing sent to the vault is counted)."""

    listings = 0

    async def versions(self, key_ref: str) -> Any:
        self.listings += 1
        return await super().versions(key_ref)


def _resolve(vault: Any, requested: str | None) -> tuple[int, Any]:
    """Create a key, rotate it, resolve ``requested`` (``"new"``: the rotated-to version);
    returns (listings sent, the plan or the error)."""
    client = vault.client
    client.create_key(vault.name, "deks", kty="RSA", size=2048)
    new = client.rotate_key(vault.name, "deks")["key"]["kid"].rsplit("/", 1)[1]
    key_ref = f"{vault.url}/keys/deks"
    allow = VaultAllowList.parse(f"{vault.name}={vault.url}")

    async def go() -> tuple[int, Any]:
        adapter = CountingAdapter(vault.async_credential(), allow, ca_bundle=vault.emulator.ca_path)
        try:
            try:
                answer: Any = await resolve_target(
                    adapter, key_ref, new if requested == "new" else requested
                )
            except RewrapTargetError as error:
                answer = error
            return adapter.listings, answer
        finally:
            await adapter.close()

    return asyncio.run(go())


def test_an_event_for_an_unknown_version_costs_one_listing(emulator_vault: Any) -> None:
    listings, answer = _resolve(emulator_vault, UNKNOWN)

    assert isinstance(answer, TargetVersionNotFoundError)
    assert not answer.exists
    assert listings == 1


def test_a_known_version_still_resolves_to_the_newest(emulator_vault: Any) -> None:
    listings, plan = _resolve(emulator_vault, "new")

    assert not isinstance(plan, RewrapTargetError)
    assert plan.requested_version == plan.target_version
    assert listings == 2
