"""keyward follows no redirect and no foreign ``nextLink`` (issue 11 item 9).

The emulator's fault plan makes a vault answer what real Key Vault never does (see
docs/emulator.md, "Fault injection"): ``redirect_to`` answers every authenticated request
with a 307 to another origin, ``next_link_origin`` names another origin in every list page's
``nextLink``. The "other origin" is a second emulator vault, whose request counters prove
what reached it. A control with the stock SDK client (default pipeline) shows each fault
does carry the request elsewhere; keyward's adapters refuse it and send nothing there.
"""

from __future__ import annotations

from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError
from azure.core.rest import HttpRequest

from devtools.emulator.pytest_plugin import EmulatorVault, VaultFactory
from shared.adapters._pipeline import FOREIGN_ORIGIN
from shared.crypto import DataKey, WrapAlgorithm
from shared.errors import ForeignOriginError, ServiceError
from tests.adapters.keyvault_harness import AdapterFactory, make_key

API = "2025-07-01"


def _received(vault: EmulatorVault) -> int:
    """Requests the vault's data plane answered (any status, authenticated or not)."""
    counters: dict[str, Any] = vault.client.counters(vault.name)["vault"]
    return sum(int(v) for v in dict(counters.get("status") or {}).values())


@pytest.mark.parametrize("kind", ["aio", "lean", "sync"])
def test_a_redirected_wrap_of_an_hsm_key_is_refused_and_its_plaintext_goes_nowhere(
    kind: str, emulator_vault_factory: VaultFactory, make_adapter: AdapterFactory
) -> None:
    hsm = emulator_vault_factory(managed_hsm=True)
    elsewhere = emulator_vault_factory(managed_hsm=True)
    kid = make_key(hsm, kty="oct-HSM", size=256)["key"]["kid"]
    wrapper = make_adapter(kind, hsm).wrapper(kid, WrapAlgorithm.A256KW)
    dek = DataKey.generate()
    wrapped = wrapper.wrap(dek)  # key fetched, challenge answered, token cached
    hsm.client.set_faults(hsm.name, redirect_to=elsewhere.url)
    hsm.client.reset_counters(elsewhere.name)

    with pytest.raises(ServiceError) as refused:
        wrapper.wrap(dek)  # an oct-HSM wrapKey body IS the plaintext DEK
    assert refused.value.status == 307
    assert not refused.value.transient, "a redirect is refused, not retried"
    with pytest.raises(ServiceError) as refused_unwrap:
        wrapper.unwrap(wrapped)  # lean: the direct REST call; else the SDK pipeline
    assert refused_unwrap.value.status == 307
    assert _received(elsewhere) == 0, "nothing reached the redirect target"

    # Control: the stock SDK pipeline follows the same redirect, body and all.
    stock = hsm.key_client(retry_total=0)
    request = HttpRequest(
        "POST", f"{kid}/wrapkey?api-version={API}", json={"alg": "A256KW", "value": "AAAA"}
    )
    stock.send_request(request)
    assert _received(elsewhere) >= 1, "the fault does redirect a default pipeline"


@pytest.mark.parametrize("kind", ["aio", "sync"])
def test_a_foreign_next_link_is_refused_before_any_request_goes_there(
    kind: str, emulator_vault_factory: VaultFactory, make_adapter: AdapterFactory
) -> None:
    vault = emulator_vault_factory()
    elsewhere = emulator_vault_factory()
    name = make_key(vault)["key"]["kid"].split("/keys/")[1].split("/")[0]
    vault.client.rotate_key(vault.name, name)
    adapter = make_adapter(kind, vault)
    key_ref = f"{vault.url}/keys/{name}"
    assert len(adapter.versions(key_ref)) == 2
    vault.client.set_faults(vault.name, next_link_origin=elsewhere.url)
    vault.client.reset_counters(elsewhere.name)

    with pytest.raises(ForeignOriginError) as refused:
        adapter.versions(key_ref)
    assert refused.value.code == FOREIGN_ORIGIN
    assert not refused.value.transient
    assert elsewhere.url.split("://")[1].split(":")[0] in str(refused.value)
    assert _received(elsewhere) == 0

    # Control: the stock SDK pager follows the foreign nextLink, bearer token and all (the
    # other vault refuses this principal with a 403: it did receive the request).
    stock = vault.key_client(retry_total=0)
    with pytest.raises(HttpResponseError):
        list(stock.list_properties_of_key_versions(name))
    assert _received(elsewhere) >= 1, "the fault does send a default pager elsewhere"


async def test_the_sweep_s_key_listing_refuses_a_foreign_next_link(
    emulator_vault_factory: VaultFactory,
) -> None:
    from devtools.emulator.credential import AsyncEmulatorCredential
    from shared.adapters import AsyncKeyVaultAdapter
    from shared.adapters._keyvault_admin import KeyVaultAdmin
    from shared.crypto import VaultAllowList
    from tests.adapters.keyvault_harness import allow_entry

    vault = emulator_vault_factory()
    elsewhere = emulator_vault_factory()
    make_key(vault, "listed")
    async with AsyncKeyVaultAdapter(
        AsyncEmulatorCredential(vault.admin_id),
        VaultAllowList.parse(allow_entry(vault)),
        ca_bundle=vault.emulator.ca_path,
    ) as adapter:
        admin = KeyVaultAdmin(adapter)
        assert await admin.list_keys(vault.url) == [f"{vault.url}/keys/listed"]
        vault.client.set_faults(vault.name, next_link_origin=elsewhere.url)
        vault.client.reset_counters(elsewhere.name)
        with pytest.raises(ForeignOriginError):
            await admin.list_keys(vault.url)
    assert _received(elsewhere) == 0
