"""The pure event type names equal the azure-eventgrid SDK's (the SDK is only imported here)."""

from __future__ import annotations

import pytest
from azure.eventgrid import SystemEventNames

from shared import events

PAIRS = [
    (events.KEY_NEW_VERSION_CREATED, SystemEventNames.KeyVaultKeyNewVersionCreatedEventName),
    (events.KEY_NEAR_EXPIRY, SystemEventNames.KeyVaultKeyNearExpiryEventName),
    (events.KEY_EXPIRED, SystemEventNames.KeyVaultKeyExpiredEventName),
    (events.SECRET_NEW_VERSION_CREATED, SystemEventNames.KeyVaultSecretNewVersionCreatedEventName),
    (events.SECRET_NEAR_EXPIRY, SystemEventNames.KeyVaultSecretNearExpiryEventName),
    (events.SECRET_EXPIRED, SystemEventNames.KeyVaultSecretExpiredEventName),
    (
        events.CERTIFICATE_NEW_VERSION_CREATED,
        SystemEventNames.KeyVaultCertificateNewVersionCreatedEventName,
    ),
    (events.CERTIFICATE_NEAR_EXPIRY, SystemEventNames.KeyVaultCertificateNearExpiryEventName),
    (events.CERTIFICATE_EXPIRED, SystemEventNames.KeyVaultCertificateExpiredEventName),
    (
        events.VAULT_ACCESS_POLICY_CHANGED,
        SystemEventNames.KeyVaultVaultAccessPolicyChangedEventName,
    ),
    (events.RESOURCE_WRITE_SUCCESS, SystemEventNames.ResourceWriteSuccessEventName),
    (events.RESOURCE_DELETE_SUCCESS, SystemEventNames.ResourceDeleteSuccessEventName),
]


@pytest.mark.parametrize(("ours", "sdk"), PAIRS, ids=[p[0].rsplit(".", 1)[-1] for p in PAIRS])
def test_event_type_equals_sdk_constant(ours: str, sdk: str) -> None:
    assert ours == sdk


def test_every_known_type_is_pinned() -> None:
    assert set(events.KNOWN_EVENT_TYPES) == {ours for ours, _ in PAIRS}
