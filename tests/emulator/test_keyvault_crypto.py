"""wrapKey / unwrapKey / encrypt / decrypt through the real ``CryptographyClient`` (sync and
``aio``), and interop with keyward's own local wrappers."""

from __future__ import annotations

import base64
import hashlib

import pytest
from azure.core.exceptions import HttpResponseError
from azure.keyvault.keys.crypto import EncryptionAlgorithm, KeyWrapAlgorithm, SignatureAlgorithm

from devtools.emulator.pytest_plugin import EmulatorVault, VaultFactory
from shared.crypto import DataKey, LocalRsaWrapper, WrapAlgorithm, rsa_public_key_from_jwk

RSA_WRAPS = [KeyWrapAlgorithm.rsa_oaep, KeyWrapAlgorithm.rsa_oaep_256, KeyWrapAlgorithm.rsa1_5]
#: Enough to act on keys without reading them: the SDK then sends every operation to the vault.
REMOTE_ONLY = ["wrapKey", "unwrapKey", "encrypt", "decrypt"]


@pytest.mark.parametrize("algorithm", RSA_WRAPS)
def test_local_wrap_remote_unwrap(emulator_vault: EmulatorVault, algorithm: str) -> None:
    key = emulator_vault.key_client().create_rsa_key("wrapping")
    crypto = emulator_vault.crypto_client(key)
    dek = b"\x42" * 32
    wrapped = crypto.wrap_key(algorithm, dek)
    assert wrapped.key_id == key.id
    assert len(wrapped.encrypted_key) == 256
    unwrapped = crypto.unwrap_key(algorithm, wrapped.encrypted_key)
    assert unwrapped.key == dek
    assert unwrapped.key_id == key.id
    counts = emulator_vault.client.counters(emulator_vault.name)
    version = counts["keys"]["wrapping"]["versions"][key.properties.version]
    assert version["ops"]["unwrapKey"] == 1
    assert "wrapKey" not in version["ops"]  # the SDK wrapped locally with the public key


@pytest.mark.parametrize("algorithm", RSA_WRAPS)
def test_remote_wrap_remote_unwrap(emulator_vault: EmulatorVault, algorithm: str) -> None:
    key = emulator_vault.key_client().create_rsa_key("remote")
    caller = emulator_vault.principal(keys=REMOTE_ONLY)
    crypto = emulator_vault.crypto_client(key.id, object_id=caller)
    wrapped = crypto.wrap_key(algorithm, b"\x07" * 32)
    assert wrapped.key_id == key.id
    assert crypto.unwrap_key(algorithm, wrapped.encrypted_key).key == b"\x07" * 32
    counts = emulator_vault.client.counters(emulator_vault.name)["keys"]["remote"]["ops"]
    assert counts["wrapKey"] == 1
    assert counts["unwrapKey"] == 1


@pytest.mark.parametrize(
    "algorithm",
    [EncryptionAlgorithm.rsa_oaep, EncryptionAlgorithm.rsa_oaep_256, EncryptionAlgorithm.rsa1_5],
)
def test_encrypt_decrypt(emulator_vault: EmulatorVault, algorithm: str) -> None:
    key = emulator_vault.key_client().create_rsa_key("enc", size=4096)
    local = emulator_vault.crypto_client(key)
    remote = emulator_vault.crypto_client(
        key.id, object_id=emulator_vault.principal(keys=REMOTE_ONLY)
    )
    for encryptor in (local, remote):
        encrypted = encryptor.encrypt(algorithm, b"plaintext")
        assert len(encrypted.ciphertext) == 512
        assert remote.decrypt(algorithm, encrypted.ciphertext).plaintext == b"plaintext"


def test_versioned_crypto_uses_that_version(emulator_vault: EmulatorVault) -> None:
    client = emulator_vault.key_client()
    old = client.create_rsa_key("versions")
    client.rotate_key("versions")
    crypto = emulator_vault.crypto_client(old.id)
    wrapped = crypto.wrap_key(KeyWrapAlgorithm.rsa_oaep_256, b"\x01" * 32)
    assert crypto.unwrap_key(KeyWrapAlgorithm.rsa_oaep_256, wrapped.encrypted_key).key_id == old.id
    latest = emulator_vault.crypto_client(client.get_key("versions"))
    with pytest.raises(HttpResponseError) as wrong_version:
        latest.unwrap_key(KeyWrapAlgorithm.rsa_oaep_256, wrapped.encrypted_key)
    assert wrong_version.value.status_code == 400
    assert wrong_version.value.error is not None
    assert wrong_version.value.error.code == "BadParameter"


@pytest.mark.parametrize(
    ("sdk_algorithm", "keyward_algorithm"),
    [
        (KeyWrapAlgorithm.rsa_oaep, WrapAlgorithm.RSA_OAEP),
        (KeyWrapAlgorithm.rsa_oaep_256, WrapAlgorithm.RSA_OAEP_256),
    ],
)
def test_keyward_local_wrapper_interop(
    emulator_vault: EmulatorVault, sdk_algorithm: str, keyward_algorithm: WrapAlgorithm
) -> None:
    key = emulator_vault.key_client().create_rsa_key("interop")
    assert key.key.n is not None
    assert key.key.e is not None
    public = rsa_public_key_from_jwk(key.key.n, key.key.e)
    local = LocalRsaWrapper(key.id, public_key=public, algorithm=keyward_algorithm)
    remote = emulator_vault.crypto_client(
        key.id, object_id=emulator_vault.principal(keys=REMOTE_ONLY)
    )
    with DataKey.generate() as dek:
        # keyward wraps locally with the public JWK; the vault unwraps.
        wrapped_locally = local.wrap(dek)
        assert remote.unwrap_key(sdk_algorithm, wrapped_locally).key == dek.reveal()
        # The vault wraps (wrapKey on the server); the vault unwraps; the bytes have the
        # length and shape keyward's unwrap checks expect.
        wrapped_remotely = remote.wrap_key(sdk_algorithm, dek.reveal()).encrypted_key
        assert len(wrapped_remotely) == public.key_size // 8
        assert remote.unwrap_key(sdk_algorithm, wrapped_remotely).key == dek.reveal()


def test_a256kw_round_trips_on_managed_hsm(emulator_vault_factory: VaultFactory) -> None:
    hsm = emulator_vault_factory(managed_hsm=True)
    key = hsm.key_client().create_oct_key("kek", size=256, hardware_protected=True)
    crypto = hsm.crypto_client(key)
    dek = DataKey.generate()
    wrapped = crypto.wrap_key(KeyWrapAlgorithm.aes_256, dek.reveal())
    assert len(wrapped.encrypted_key) == 40
    assert crypto.unwrap_key(KeyWrapAlgorithm.aes_256, wrapped.encrypted_key).key == dek.reveal()
    tampered = bytes([wrapped.encrypted_key[0] ^ 1]) + wrapped.encrypted_key[1:]
    with pytest.raises(HttpResponseError) as refused:
        crypto.unwrap_key(KeyWrapAlgorithm.aes_256, tampered)
    assert refused.value.status_code == 400
    with pytest.raises(HttpResponseError):
        crypto.wrap_key(KeyWrapAlgorithm.rsa_oaep_256, dek.reveal())


def test_raw_wrap_answers_base64url(emulator_vault: EmulatorVault) -> None:
    """The REST shape: ``kid`` plus ``value`` (base64url, no padding); base64url in."""
    import requests

    key = emulator_vault.key_client().create_rsa_key("raw")
    token = emulator_vault.credential().get_token("https://vault.azure.net/.default").token
    answer = requests.post(
        f"{key.id}/wrapkey?api-version=2025-07-01",
        json={"alg": "RSA-OAEP-256", "value": base64.urlsafe_b64encode(b"\xfb" * 32).decode()},
        headers={"Authorization": f"Bearer {token}"},
        verify=emulator_vault.emulator.ca_path,
    )
    assert answer.status_code == 200
    body = answer.json()
    assert body["kid"] == key.id
    assert "=" not in body["value"]
    assert "+" not in body["value"]
    assert "/" not in body["value"]


@pytest.mark.parametrize("op", ["unwrapkey", "wrapkey", "decrypt", "encrypt"])
def test_standard_base64_value_is_refused(emulator_vault: EmulatorVault, op: str) -> None:
    """Key Vault refuses standard base64 (``+``, ``/``) in ``value`` with 400 BadParameter
    (bruj0/vault-recovery-key#20); padded base64url is accepted."""
    import requests

    key = emulator_vault.key_client().create_rsa_key("strict")
    crypto = emulator_vault.crypto_client(key)
    ciphertext = crypto.wrap_key(KeyWrapAlgorithm.rsa_oaep_256, b"\xfb" * 32).encrypted_key
    plain = b"\xfb" * 32  # standard base64 of it contains "+/"
    raw = ciphertext if op in ("unwrapkey", "decrypt") else plain
    assert {"+", "/"} & set(base64.b64encode(raw).decode())  # 256 random bytes: ~certain
    token = emulator_vault.credential().get_token("https://vault.azure.net/.default").token

    def post(value: str) -> requests.Response:
        return requests.post(
            f"{key.id}/{op}?api-version=2025-07-01",
            json={"alg": "RSA-OAEP-256", "value": value},
            headers={"Authorization": f"Bearer {token}"},
            verify=emulator_vault.emulator.ca_path,
        )

    refused = post(base64.b64encode(raw).decode())
    assert refused.status_code == 400
    error = refused.json()["error"]
    assert error["code"] == "BadParameter"
    assert error["message"].startswith("Content of 'value' is not base64url.")
    assert post(base64.urlsafe_b64encode(raw).decode()).status_code == 200  # padded: fine
    assert post(base64.urlsafe_b64encode(raw).decode().rstrip("=")).status_code == 200


async def test_aio_crypto_client(emulator_vault: EmulatorVault) -> None:
    key = emulator_vault.key_client().create_rsa_key("async")
    async with emulator_vault.async_crypto_client(key.id) as crypto:
        wrapped = await crypto.wrap_key(KeyWrapAlgorithm.rsa_oaep_256, b"\x09" * 32)
        unwrapped = await crypto.unwrap_key(KeyWrapAlgorithm.rsa_oaep_256, wrapped.encrypted_key)
        assert unwrapped.key == b"\x09" * 32
        decrypted = await crypto.decrypt(
            EncryptionAlgorithm.rsa_oaep,
            (await crypto.encrypt(EncryptionAlgorithm.rsa_oaep, b"hi")).ciphertext,
        )
        assert decrypted.plaintext == b"hi"
    async with emulator_vault.async_key_client() as keys:
        fetched = await keys.get_key("async")
        assert fetched.id == key.id
        names = [p.name async for p in keys.list_properties_of_keys()]
        assert names == ["async"]


@pytest.mark.parametrize(
    ("algorithm", "digest_name"),
    [
        (SignatureAlgorithm.rs256, "sha256"),
        (SignatureAlgorithm.ps384, "sha384"),
        (SignatureAlgorithm.rs512, "sha512"),
    ],
)
def test_sign_remote_verify_local_and_remote(
    emulator_vault: EmulatorVault, algorithm: str, digest_name: str
) -> None:
    key = emulator_vault.key_client().create_rsa_key("signer")
    digest = hashlib.new(digest_name, b"keyward").digest()
    local = emulator_vault.crypto_client(key)
    remote = emulator_vault.crypto_client(
        key.id, object_id=emulator_vault.principal(keys=["sign", "verify"])
    )
    signed = local.sign(algorithm, digest)  # the private half lives in the vault
    assert signed.key_id == key.id
    assert local.verify(algorithm, digest, signed.signature).is_valid
    assert remote.verify(algorithm, digest, signed.signature).is_valid
    other = hashlib.new(digest_name, b"other").digest()
    assert not remote.verify(algorithm, other, signed.signature).is_valid
    with pytest.raises(HttpResponseError) as refused:
        remote.sign(algorithm, digest[:-1])
    assert refused.value.status_code == 400
