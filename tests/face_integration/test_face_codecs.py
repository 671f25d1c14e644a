"""The small pure pieces of the Face adapters: ids, endpoints, vault names, stored records."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from shared.adapters.arm import management_kwargs
from shared.adapters.arm_face import parse_account_id
from shared.composition._dependents import KINDS
from shared.crypto import VaultAllowList
from shared.dependents import (
    Finding,
    FlagEventType,
    FlagRecord,
    PublishEvent,
    Reason,
    Status,
    record_from_dict,
    record_to_dict,
    vault_name_for,
)
from shared.errors import InvalidInputError
from shared.services._dependent_effects import encode, event_id

FACE = next(kind.labels for kind in KINDS if kind.name == "face")

ACCOUNT = (
    "/subscriptions/00000000-0000-0000-0000-00000000c0de/resourceGroups/rg1"
    "/providers/Microsoft.CognitiveServices/accounts/face1"
)


def test_account_id_parts() -> None:
    assert parse_account_id(ACCOUNT) == ("00000000-0000-0000-0000-00000000c0de", "rg1", "face1")


@pytest.mark.parametrize(
    "bad",
    [
        "",
        ACCOUNT.replace("Microsoft.CognitiveServices", "Microsoft.KeyVault"),
        ACCOUNT + "/extra",
        "/subscriptions/x/resourceGroups/rg/providers/Microsoft.CognitiveServices/accountz/a",
    ],
)
def test_account_id_refused(bad: str) -> None:
    with pytest.raises(InvalidInputError):
        parse_account_id(bad)


def test_management_audience_follows_the_cloud_and_keeps_the_real_one_on_loopback() -> None:
    china = management_kwargs("https://management.chinacloudapi.cn/", None)
    assert china["credential_scopes"] == ["https://management.chinacloudapi.cn/.default"]
    assert "connection_verify" not in china
    local = management_kwargs("https://127.0.0.1:8443", "/tmp/ca.pem")
    assert local["credential_scopes"] == ["https://management.azure.com/.default"]
    assert local["connection_verify"] == "/tmp/ca.pem"


def test_vault_names_from_the_allow_list_or_the_host() -> None:
    allow = VaultAllowList.parse("devkv=https://127.0.0.1:9443,contoso")
    assert vault_name_for("https://127.0.0.1:9443/", allow) == "devkv"
    assert vault_name_for("https://Contoso.vault.azure.net/", allow) == "contoso"
    assert vault_name_for("https://other.vault.azure.cn", allow) == "other"


def test_flag_record_round_trips() -> None:
    when = datetime(2026, 11, 29, 3, 0, tzinfo=UTC)
    record = FlagRecord(
        account_id=ACCOUNT,
        status=Status.ACCESS_LOST,
        reasons=(Finding(Reason.KEY_DISABLED, "version abc is disabled"),),
        key_id="https://contoso.vault.azure.net/keys/cmk",
        first_seen=when,
        last_seen=when,
        last_change=when,
        unknown_since=when,
        unknown_reasons=(Finding(Reason.THROTTLED, "429"),),
    )
    assert record_from_dict(record_to_dict(record)) == record


def test_event_ids_are_stable_per_change() -> None:
    data = {"observedAt": "2026-11-29T03:00:00+00:00", "status": "ACCESS_LOST"}
    lost = PublishEvent(FlagEventType.KEY_ACCESS_LOST, ACCOUNT, data)
    again = PublishEvent(FlagEventType.KEY_ACCESS_LOST, ACCOUNT.upper(), dict(data))
    later = PublishEvent(
        FlagEventType.KEY_ACCESS_LOST, ACCOUNT, {**data, "observedAt": "2026-11-29T04:00:00"}
    )
    assert event_id(lost, FACE) == event_id(again, FACE) != event_id(later, FACE)
    assert encode(lost, FACE)["id"] == event_id(lost, FACE)
    assert encode(lost, FACE)["type"] == "Keyward.FaceAccount.KeyAccessLost"


def test_event_ids_are_the_ones_keyward_always_sent() -> None:
    """A marker written before the kinds became generic replays with the same id."""
    lost = PublishEvent(
        FlagEventType.KEY_ACCESS_LOST, ACCOUNT, {"observedAt": "2026-11-29T03:00:00+00:00"}
    )
    name = f"keyward:{ACCOUNT.lower()}:Keyward.FaceAccount.KeyAccessLost:2026-11-29T03:00:00+00:00"
    assert event_id(lost, FACE) == str(uuid.uuid5(uuid.NAMESPACE_URL, name))
