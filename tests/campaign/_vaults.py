"""The key's vault in a campaign scenario: in-process local keys, or keyward's emulator.

Both give the services a ``KeyVersionSource`` and give the scenario what an operator and an
application do: rotate, disable a version, wrap with a version's public key, and unwrap (the
oracle's "does it still decrypt"). With the emulator the services run on the real Key Vault
adapter and every oracle unwrap is a real ``unwrapKey`` the vault refuses for a disabled
version (403 KeyDisabled); the local source refuses the same way in-process.
"""

from __future__ import annotations

import uuid
from typing import Any, Protocol

from azure.core.exceptions import HttpResponseError
from azure.keyvault.keys import KeyClient
from azure.keyvault.keys.crypto import CryptographyClient, KeyWrapAlgorithm
from cryptography.hazmat.primitives.asymmetric import rsa

from devtools.emulator.auth import ALL_KEY_PERMISSIONS
from devtools.emulator.credential import AsyncEmulatorCredential, EmulatorCredential
from devtools.emulator.process import RunningEmulator
from devtools.local_keys import LocalKeyVersionSource
from shared.adapters import AsyncKeyVaultAdapter
from shared.crypto import LocalRsaWrapper, VaultAllowList
from shared.errors import KeywardError
from shared.rewrap import KeyVersionSource

KEY_NAME = "payments"


class Vault(Protocol):
    key_ref: str
    allow: VaultAllowList
    keys: KeyVersionSource

    def rotate(self) -> str: ...

    def disable(self, version: str) -> None: ...

    def wrapper(self, key_id: str) -> LocalRsaWrapper: ...

    def unwrap(self, key_id: str, wrapped: bytes, algorithm: str) -> bytes | None: ...

    async def close(self) -> None: ...


def _version(key_id: str) -> str:
    return key_id.rstrip("/").rsplit("/", 1)[1].lower()


class LocalVault:
    """``devtools.local_keys``: RSA-2048 keys from a pool, versions with random ids."""

    def __init__(self, pool: list[rsa.RSAPrivateKey]) -> None:
        self.key_ref = f"https://contoso-kv.vault.azure.net/keys/{KEY_NAME}"
        self.allow = VaultAllowList.parse("contoso-kv")
        self.source = LocalKeyVersionSource()
        self.keys = self.source
        self._pool = pool
        self._count = 0
        self._disabled: set[str] = set()

    def rotate(self) -> str:
        version = uuid.uuid4().hex
        self.source.add_version(self.key_ref, version, self._pool[self._count % len(self._pool)])
        self._count += 1
        return version

    def disable(self, version: str) -> None:
        self.source.set_enabled(self.key_ref, version, False)
        self._disabled.add(version)

    def wrapper(self, key_id: str) -> LocalRsaWrapper:
        private = self.source.private_key(f"{self.key_ref}/{_version(key_id)}")
        return LocalRsaWrapper(key_id, private_key=private)

    def unwrap(self, key_id: str, wrapped: bytes, algorithm: str) -> bytes | None:
        if _version(key_id) in self._disabled:
            return None  # as the vault: 403 KeyDisabled
        with self.wrapper(key_id).unwrap(wrapped) as material:
            return material.reveal()

    async def close(self) -> None:
        return None


class EmulatorVault:
    """A fresh vault in keyward's emulator; the services use the real Key Vault adapter."""

    def __init__(self, emulator: RunningEmulator) -> None:
        self._emulator = emulator
        self._client = emulator.client
        self.name = "kwc" + uuid.uuid4().hex[:12]
        info = self._client.create_vault(self.name)
        admin = str(self._client.create_principal(display_name=f"admin-{self.name}")["object_id"])
        self._client.set_access_policy(self.name, admin, ALL_KEY_PERMISSIONS)
        url = str(info["url"]).rstrip("/")
        self.key_ref = f"{url}/keys/{KEY_NAME}"
        self.allow = VaultAllowList.parse(f"{self.name}={url}")
        self._credential = EmulatorCredential(admin)
        self._async_credential = AsyncEmulatorCredential(admin)
        self.keys = AsyncKeyVaultAdapter(
            self._async_credential, self.allow, ca_bundle=emulator.ca_path
        )
        self._key_client = KeyClient(url, self._credential, **emulator.sdk_kwargs)
        self._public: dict[str, rsa.RSAPublicKey] = {}
        self._crypto: dict[str, CryptographyClient] = {}

    def rotate(self) -> str:
        if self._public:
            bundle = self._client.rotate_key(self.name, KEY_NAME)
        else:
            bundle = self._client.create_key(self.name, KEY_NAME, kty="RSA", size=2048)
        version = _version(str(bundle["key"]["kid"]))
        jwk = self._key_client.get_key(KEY_NAME, version).key
        numbers = rsa.RSAPublicNumbers(
            int.from_bytes(bytes(jwk.e or b""), "big"), int.from_bytes(bytes(jwk.n or b""), "big")
        )
        self._public[version] = numbers.public_key()
        return version

    def disable(self, version: str) -> None:
        self._key_client.update_key_properties(KEY_NAME, version, enabled=False)

    def wrapper(self, key_id: str) -> LocalRsaWrapper:
        """Wrap-only (the public key), as applications and azure-storage-blob do."""
        return LocalRsaWrapper(key_id, public_key=self._public[_version(key_id)])

    def unwrap(self, key_id: str, wrapped: bytes, algorithm: str) -> bytes | None:
        version = _version(key_id)
        client = self._crypto.get(version)
        if client is None:
            client = CryptographyClient(
                f"{self.key_ref}/{version}", self._credential, **self._emulator.sdk_kwargs
            )
            self._crypto[version] = client
        try:
            return bytes(client.unwrap_key(KeyWrapAlgorithm(algorithm), wrapped).key)
        except (HttpResponseError, KeywardError):
            return None

    async def close(self) -> None:
        for client in self._crypto.values():
            client.close()
        self._key_client.close()
        await self.keys.close()
        self._client.delete_vault(self.name)


class VaultKek:
    """azure-storage-blob's key-encryption key for the oracle: unwrap goes to the vault."""

    def __init__(self, vault: Vault, kid: str) -> None:
        self._vault, self._kid = vault, kid

    def unwrap_key(self, key: bytes, algorithm: str) -> bytes:
        material = self._vault.unwrap(self._kid, key, algorithm)
        if material is None:
            raise PermissionError(f"the vault refused to unwrap under {self._kid}")
        return material

    def get_kid(self) -> str:
        return self._kid

    def get_key_wrap_algorithm(self) -> str:
        return "RSA-OAEP-256"

    def wrap_key(self, key: bytes) -> Any:
        raise NotImplementedError("the oracle only reads")
