"""Key management through the real ``KeyClient``: create, import, get, list, update, rotate,
rotation policy, delete, get deleted, recover, purge."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError
from azure.keyvault.keys import (
    JsonWebKey,
    KeyClient,
    KeyCurveName,
    KeyRotationLifetimeAction,
    KeyRotationPolicy,
    KeyRotationPolicyAction,
    KeyType,
    KeyVaultKeyIdentifier,
)
from cryptography.hazmat.primitives.asymmetric import rsa

from devtools.emulator.pytest_plugin import EmulatorVault, VaultFactory

VERSION = re.compile(r"^[0-9a-f]{32}$")


@pytest.mark.parametrize("size", [2048, 3072, 4096])
def test_create_rsa_key_sizes(emulator_vault: EmulatorVault, size: int) -> None:
    client = emulator_vault.key_client()
    key = client.create_rsa_key(f"rsa{size}", size=size)
    assert key.key_type == KeyType.rsa
    assert key.key.n is not None
    assert len(key.key.n) * 8 == size
    assert key.key.d is None  # never the private part
    assert VERSION.match(key.properties.version or "")
    assert key.id == f"{emulator_vault.url}/keys/rsa{size}/{key.properties.version}"
    parsed = KeyVaultKeyIdentifier(key.id)
    assert parsed.vault_url == emulator_vault.url
    assert key.properties.enabled is True
    assert key.properties.recovery_level == "Recoverable"
    assert key.properties.recoverable_days == 90
    assert set(key.key_operations) == {
        "encrypt",
        "decrypt",
        "sign",
        "verify",
        "wrapKey",
        "unwrapKey",
    }


def test_create_hsm_key_and_attributes(emulator_vault: EmulatorVault) -> None:
    client = emulator_vault.key_client()
    expires = datetime.now(UTC).replace(microsecond=0) + timedelta(days=30)
    key = client.create_rsa_key(
        "hsm",
        hardware_protected=True,
        key_operations=["wrapKey", "unwrapKey"],
        expires_on=expires,
        tags={"owner": "keyward"},
    )
    assert key.key_type == KeyType.rsa_hsm
    assert key.key_operations == ["wrapKey", "unwrapKey"]
    assert key.properties.expires_on == expires
    assert key.properties.tags == {"owner": "keyward"}


def test_unsupported_key_requests_are_bad_parameters(emulator_vault: EmulatorVault) -> None:
    client = emulator_vault.key_client()
    with pytest.raises(HttpResponseError) as small:
        client.create_rsa_key("small", size=1024)
    assert small.value.status_code == 400
    assert small.value.error is not None
    assert small.value.error.code == "BadParameter"
    with pytest.raises(HttpResponseError) as oct_key:
        client.create_oct_key("aes", size=256, hardware_protected=True)
    assert oct_key.value.status_code == 400
    with pytest.raises(HttpResponseError):
        client.create_ec_key("ec", curve=KeyCurveName.p_256)


def test_managed_hsm_creates_oct_hsm_keys(emulator_vault_factory: VaultFactory) -> None:
    hsm = emulator_vault_factory(managed_hsm=True)
    client = hsm.key_client()
    key = client.create_oct_key("aes", size=256, hardware_protected=True)
    assert key.key_type == KeyType.oct_hsm
    assert key.key.k is None
    rsa_key = client.create_rsa_key("rsa")
    assert rsa_key.key_type == KeyType.rsa_hsm


def test_import_rsa_key_serves_the_same_public_key(emulator_vault: EmulatorVault) -> None:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    numbers = private.private_numbers()

    def raw(value: int) -> bytes:
        return value.to_bytes((value.bit_length() + 7) // 8, "big")

    jwk = JsonWebKey(
        kty=KeyType.rsa,
        n=raw(numbers.public_numbers.n),
        e=raw(numbers.public_numbers.e),
        d=raw(numbers.d),
        p=raw(numbers.p),
        q=raw(numbers.q),
        dp=raw(numbers.dmp1),
        dq=raw(numbers.dmq1),
        qi=raw(numbers.iqmp),
        key_ops=["wrapKey", "unwrapKey"],
    )
    client = emulator_vault.key_client()
    imported = client.import_key("imported", jwk)
    assert imported.key.n == raw(numbers.public_numbers.n)
    assert imported.key.d is None
    assert imported.key_operations == ["wrapKey", "unwrapKey"]
    hsm = client.import_key("imported-hsm", jwk, hardware_protected=True)
    assert hsm.key_type == KeyType.rsa_hsm


def test_import_without_private_part_is_refused(emulator_vault: EmulatorVault) -> None:
    jwk = JsonWebKey(kty=KeyType.rsa, n=b"\x01" * 256, e=b"\x01\x00\x01")
    with pytest.raises(HttpResponseError) as refused:
        emulator_vault.key_client().import_key("public-only", jwk)
    assert refused.value.status_code == 400


def test_get_latest_and_by_version(emulator_vault: EmulatorVault) -> None:
    client = emulator_vault.key_client()
    first = client.create_rsa_key("k")
    second = client.create_rsa_key("k")  # create on an existing name adds a version
    assert first.properties.version != second.properties.version
    assert client.get_key("k").id == second.id
    old = client.get_key("k", version=first.properties.version)
    assert old.id == first.id
    assert old.key.n == first.key.n


def test_list_keys_and_versions_page_through(emulator_vault: EmulatorVault) -> None:
    client = emulator_vault.key_client()
    for index in range(3):
        emulator_vault.client.create_key(emulator_vault.name, f"listed-{index}")
    for _ in range(30):  # more than one page (25) of versions
        emulator_vault.client.rotate_key(emulator_vault.name, "listed-0")
    names = sorted(p.name for p in client.list_properties_of_keys())
    assert names == ["listed-0", "listed-1", "listed-2"]
    versions = list(client.list_properties_of_key_versions("listed-0"))
    assert len(versions) == 31
    assert all(VERSION.match(v.version or "") for v in versions)
    small_pages = client.list_properties_of_keys(max_page_size=1).by_page()
    assert sum(1 for _ in small_pages) == 3


def test_update_properties(emulator_vault: EmulatorVault) -> None:
    client = emulator_vault.key_client()
    key = client.create_rsa_key("updated")
    not_before = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    expires = not_before + timedelta(days=10)
    updated = client.update_key_properties(
        "updated",
        key.properties.version,
        enabled=True,
        not_before=not_before,
        expires_on=expires,
        key_operations=["unwrapKey"],
        tags={"a": "b"},
    )
    assert updated.properties.not_before == not_before
    assert updated.properties.expires_on == expires
    assert updated.key_operations == ["unwrapKey"]
    assert updated.properties.tags == {"a": "b"}
    assert updated.properties.updated_on is not None
    disabled = client.update_key_properties("updated", enabled=False)
    assert disabled.properties.enabled is False
    enabled = client.update_key_properties("updated", enabled=True)
    assert enabled.properties.enabled is True


def test_rotate_and_rotation_policy(emulator_vault: EmulatorVault) -> None:
    client = emulator_vault.key_client()
    key = client.create_rsa_key("rotating", size=3072, tags={"keep": "me"})
    default = client.get_key_rotation_policy("rotating")
    assert [a.action for a in default.lifetime_actions] == [KeyRotationPolicyAction.notify]
    policy = client.update_key_rotation_policy(
        "rotating",
        KeyRotationPolicy(),
        lifetime_actions=[
            KeyRotationLifetimeAction(KeyRotationPolicyAction.rotate, time_after_create="P90D"),
            KeyRotationLifetimeAction(KeyRotationPolicyAction.notify, time_before_expiry="P30D"),
        ],
        expires_in="P2Y",
    )
    assert policy.expires_in == "P2Y"
    assert policy.id == f"{emulator_vault.url}/keys/rotating/rotationpolicy"
    fetched = client.get_key_rotation_policy("rotating")
    assert {a.action for a in fetched.lifetime_actions} == {
        KeyRotationPolicyAction.rotate,
        KeyRotationPolicyAction.notify,
    }
    rotated = client.rotate_key("rotating")
    assert rotated.properties.version != key.properties.version
    assert rotated.key.n != key.key.n
    assert len(rotated.key.n or b"") * 8 == 3072
    assert rotated.properties.tags == {"keep": "me"}
    assert rotated.properties.expires_on is not None  # expiryTime P2Y from the policy
    assert client.get_key("rotating").id == rotated.id


def test_delete_get_deleted_recover(emulator_vault: EmulatorVault) -> None:
    client = emulator_vault.key_client()
    key = client.create_rsa_key("doomed")
    poller = client.begin_delete_key("doomed")
    deleted = poller.result()
    assert deleted.recovery_id == f"{emulator_vault.url}/deletedkeys/doomed"
    assert deleted.deleted_date is not None
    assert deleted.scheduled_purge_date is not None
    with pytest.raises(ResourceNotFoundError):
        client.get_key("doomed")
    poller.wait()  # the SDK polls GET /deletedkeys/doomed until the deletion completes
    assert poller.done()
    assert client.get_deleted_key("doomed").id == key.id
    assert [d.name for d in client.list_deleted_keys()] == ["doomed"]
    with pytest.raises(ResourceExistsError) as conflict:
        client.create_rsa_key("doomed")
    assert conflict.value.status_code == 409
    recovered = client.begin_recover_deleted_key("doomed").result()
    assert recovered.id == key.id
    assert client.get_key("doomed").id == key.id


def test_versions_of_an_unknown_key_are_an_empty_page(emulator_vault: EmulatorVault) -> None:
    """``GET /keys/{unknown}/versions`` is 200 ``{"value": [], "nextLink": null}``, not 404
    (azure-sdk-for-net SessionRecords ``GetPropertiesOfKeyVersionsNonExisting.json``)."""
    import requests

    client = emulator_vault.key_client()
    assert list(client.list_properties_of_key_versions("never-made")) == []
    client.create_rsa_key("short-lived")
    client.begin_delete_key("short-lived").wait()
    assert list(client.list_properties_of_key_versions("short-lived")) == []  # deleted: same
    answer = requests.get(
        f"{emulator_vault.url}/keys/never-made/versions?api-version=2025-07-01",
        headers={"Authorization": f"Bearer {emulator_vault.token()}"},
        verify=emulator_vault.emulator.ca_path,
    )
    assert (answer.status_code, answer.json()) == (200, {"value": [], "nextLink": None})


def test_a_deletion_takes_a_few_seconds_to_complete(emulator_vault: EmulatorVault) -> None:
    """Right after DELETE the key is in neither collection; ``/deletedkeys/{name}`` is 404
    until the deletion completes (the SDKs' delete pollers wait for exactly that)."""
    client = emulator_vault.key_client()
    key = client.create_rsa_key("pending")
    assert emulator_vault.client.get_vault(emulator_vault.name)["deletion_lag_seconds"] > 0
    emulator_vault.client.set_deletion_lag(emulator_vault.name, 600)  # long: no race
    deleted = client.begin_delete_key("pending").result()  # the DELETE answer itself
    assert deleted.id == key.id
    with pytest.raises(ResourceNotFoundError):
        client.get_key("pending")
    with pytest.raises(ResourceNotFoundError):
        client.get_deleted_key("pending")
    assert [d.name for d in client.list_deleted_keys()] == []
    with pytest.raises(ResourceNotFoundError):
        client.begin_recover_deleted_key("pending")
    emulator_vault.client.advance_clock(601)  # the lag runs on the emulator's clock
    assert client.get_deleted_key("pending").id == key.id
    assert [d.name for d in client.list_deleted_keys()] == ["pending"]

    emulator_vault.client.set_deletion_lag(emulator_vault.name, 0)  # explicit: instant
    client.create_rsa_key("instant")
    client.begin_delete_key("instant").result()
    assert client.get_deleted_key("instant").name == "instant"


def test_purge_needs_purge_protection_off(emulator_vault_factory: VaultFactory) -> None:
    protected = emulator_vault_factory()
    client = protected.key_client()
    client.create_rsa_key("kept")
    client.begin_delete_key("kept").wait()
    with pytest.raises(HttpResponseError) as refused:
        client.purge_deleted_key("kept")
    assert refused.value.status_code == 403

    purgeable = emulator_vault_factory(purge_protection=False)
    client = purgeable.key_client()
    key = client.create_rsa_key("gone")
    assert key.properties.recovery_level == "Recoverable+Purgeable"
    client.begin_delete_key("gone").wait()
    client.purge_deleted_key("gone")
    with pytest.raises(ResourceNotFoundError):
        client.get_deleted_key("gone")
    recreated = client.create_rsa_key("gone")
    assert recreated.properties.version != key.properties.version


def test_soft_delete_off_deletes_for_good(emulator_vault_factory: VaultFactory) -> None:
    vault = emulator_vault_factory(soft_delete=False, purge_protection=False)
    client: KeyClient = vault.key_client()
    key = client.create_rsa_key("brief")
    assert key.properties.recovery_level == "Purgeable"
    deleted = client.begin_delete_key("brief").result()
    assert deleted.recovery_id is None
    with pytest.raises(ResourceNotFoundError):
        client.get_deleted_key("brief")
    assert vault.client.get_vault(vault.name)["keys"] == []


def test_rotation_policy_is_validated(emulator_vault: EmulatorVault) -> None:
    client = emulator_vault.key_client()
    client.create_rsa_key("policed")
    for actions, expires_in in (
        (
            [KeyRotationLifetimeAction(KeyRotationPolicyAction.rotate, time_after_create="soon")],
            None,
        ),
        (
            [KeyRotationLifetimeAction(KeyRotationPolicyAction.notify, time_after_create="P1D")],
            None,
        ),
        ([], "two years"),
    ):
        with pytest.raises(HttpResponseError) as refused:
            client.update_key_rotation_policy(
                "policed", KeyRotationPolicy(), lifetime_actions=actions, expires_in=expires_in
            )
        assert refused.value.status_code == 400


def test_key_names_are_case_insensitive_and_validated(emulator_vault: EmulatorVault) -> None:
    client = emulator_vault.key_client()
    created = client.create_rsa_key("MixedCase")
    assert client.get_key("mixedcase").id == created.id
    again = client.create_rsa_key("MIXEDCASE")  # a new version of the same key
    assert again.name == "MixedCase"
    assert len(list(client.list_properties_of_key_versions("mixedCASE"))) == 2
    with pytest.raises(HttpResponseError) as refused:
        client.create_rsa_key("not_valid")
    assert refused.value.status_code == 400
