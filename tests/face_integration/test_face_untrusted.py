"""ARM listings follow a ``nextLink`` only on the ARM endpoint's origin (issue 11 item 9).

The emulator's ARM can be told to name a ``nextLink`` on another origin in every account
listing (``ArmControl.set_next_link_origin``: fault injection, ARM itself never does this;
see docs/emulator.md). The other origin here is an emulator vault, whose counters show what
reached it: keyward's ARM clients refuse the page before anything is sent there.
"""

from __future__ import annotations

from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError
from azure.mgmt.cognitiveservices import CognitiveServicesManagementClient

from devtools.emulator.arm_client import management_client_kwargs
from devtools.emulator.credential import EmulatorCredential
from shared.errors import ForeignOriginError
from tests.face_integration.conftest import SUBSCRIPTION, FaceLab

pytestmark = [pytest.mark.emulator, pytest.mark.azurite]


def _received(lab: FaceLab, vault_name: str) -> int:
    counters: dict[str, Any] = lab.client.counters(vault_name)["vault"]
    return sum(int(v) for v in dict(counters.get("status") or {}).values())


async def test_a_foreign_next_link_in_an_account_listing_is_refused(lab: FaceLab) -> None:
    vault = lab.vault()
    lab.key(vault)
    lab.account(vault)
    elsewhere = lab.vault()
    service = lab.service(resource_graph=False)  # the per-subscription listing's pager
    assert len((await service.refresh()).accounts) == 1
    lab.client.reset_counters(elsewhere.name)
    lab.arm.set_next_link_origin(elsewhere.url)
    try:
        with pytest.raises(ForeignOriginError) as refused:
            await service.refresh()
    finally:
        lab.arm.set_next_link_origin(None)
    assert not refused.value.transient
    assert _received(lab, elsewhere.name) == 0, "no request (no ARM token) went elsewhere"

    # Control: a stock management client (default pipeline) follows the foreign nextLink.
    lab.arm.set_next_link_origin(elsewhere.url)
    stock = CognitiveServicesManagementClient(
        EmulatorCredential(lab.operator),
        SUBSCRIPTION,
        **management_client_kwargs(lab.emulator.url, lab.emulator.ca_path),
    )
    try:
        with pytest.raises(HttpResponseError):
            list(stock.accounts.list_by_resource_group(lab.group))
    finally:
        lab.arm.set_next_link_origin(None)
        stock.close()
    assert _received(lab, elsewhere.name) >= 1, "the fault does send a default pager elsewhere"
