"""A fake of keyward's own ``VaultKeys`` port (not of Azure): RSA versions held in-process.

Built from ``LocalRsaWrapper`` with private keys, so wrap and unwrap are the real RSA-OAEP;
a version can be disabled (its unwrap then raises ``KeyDisabledError``, as the Key Vault
adapter does for a disabled key) and every call is counted.
"""

from __future__ import annotations

from collections import Counter

from cryptography.hazmat.primitives.asymmetric import padding, rsa

from shared.crypto import DataKey, LocalRsaWrapper, WrapAlgorithm, require_unwrap_allowed
from shared.errors import KeyDisabledError, KeyNotFoundError

VAULT = "https://records-test.vault.azure.net"
KEY_REF = f"{VAULT}/keys/records-kek"


def wrap_as(
    private_key: rsa.RSAPrivateKey, key_id: str, algorithm: WrapAlgorithm, dek: DataKey
) -> bytes:
    """``dek`` wrapped as another writer did (RSA-OAEP from an older keyward, or RSA1_5,
    which keyward never wraps with: made with the public key by hand)."""
    if algorithm is WrapAlgorithm.RSA1_5:
        return private_key.public_key().encrypt(dek.reveal(), padding.PKCS1v15())
    return LocalRsaWrapper(key_id, private_key=private_key, algorithm=algorithm).wrap(dek)


class FakeVaultWrapper:
    """One version's async wrapper; refuses unwrap while the version is disabled."""

    def __init__(self, vault: LocalVaultKeys, inner: LocalRsaWrapper) -> None:
        self._vault = vault
        self._inner = inner

    @property
    def key_id(self) -> str:
        return self._inner.key_id

    @property
    def algorithm(self) -> WrapAlgorithm:
        return self._inner.algorithm

    async def wrap(self, dek: DataKey) -> bytes:
        self._vault.calls["wrap"] += 1
        return self._inner.wrap(dek)

    async def unwrap(self, wrapped: bytes) -> DataKey:
        self._vault.calls["unwrap"] += 1
        if self.key_id in self._vault.disabled:
            raise KeyDisabledError(f"{self.key_id} is disabled", status=403, code="Forbidden")
        return self._inner.unwrap(wrapped)


class LocalVaultKeys:
    """Versions of one key; ``rotate()`` adds a newer one, ``disable()`` revokes."""

    def __init__(self, private_keys: list[rsa.RSAPrivateKey], key_ref: str = KEY_REF) -> None:
        self.key_ref = key_ref
        self._spare = list(private_keys)
        self.versions: list[LocalRsaWrapper] = []
        self._private: dict[str, rsa.RSAPrivateKey] = {}
        self.disabled: set[str] = set()
        self.calls: Counter[str] = Counter()
        self.rotate()

    def rotate(self) -> str:
        """A new newest version (from the spare private keys); returns its key id."""
        number = len(self.versions) + 1
        key_id = f"{self.key_ref}/{str(number) * 32}"
        self._private[key_id] = self._spare.pop(0)
        self.versions.append(LocalRsaWrapper(key_id, private_key=self._private[key_id]))
        return key_id

    def private_key(self, key_id: str) -> rsa.RSAPrivateKey:
        """One version's private key (to write rows as other writers did)."""
        return self._private[key_id]

    def disable(self, key_id: str | None = None) -> None:
        """Disable one version, or every version (the whole key)."""
        self.disabled |= {key_id} if key_id else {w.key_id for w in self.versions}

    async def newest(self, key_ref: str) -> FakeVaultWrapper:
        self.calls["newest"] += 1
        assert key_ref == self.key_ref
        enabled = [w for w in self.versions if w.key_id not in self.disabled]
        if not enabled:
            raise KeyDisabledError(f"{key_ref} has no enabled version", status=403)
        return FakeVaultWrapper(self, enabled[-1])

    async def version(
        self, key_id: str, algorithm: WrapAlgorithm | None = None
    ) -> FakeVaultWrapper:
        """As the Key Vault adapter: unwraps with the row's algorithm (default RSA-OAEP-256);
        RSA1_5 is refused (no legacy reads allowed here)."""
        self.calls["version"] += 1
        if key_id not in self._private:
            raise KeyNotFoundError(f"{key_id} not found", status=404)
        algorithm = algorithm or WrapAlgorithm.RSA_OAEP_256
        require_unwrap_allowed(algorithm, allow_legacy_rsa1_5=False)
        return FakeVaultWrapper(
            self, LocalRsaWrapper(key_id, private_key=self._private[key_id], algorithm=algorithm)
        )
