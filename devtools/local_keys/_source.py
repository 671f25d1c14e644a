"""Key versions held in-process: the key source for tests and the CLI's development mode.

Behaves as a vault would for the engine's purposes: versions with enabled flags and creation
times, unwrap refused for disabled (``KeyDisabledError``) and deleted (``KeyNotFoundError``)
versions at call time, wrap with the public key. Production uses the Key Vault adapter.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from cryptography.hazmat.primitives.asymmetric import rsa

from shared.crypto import DataKey, LocalRsaWrapper, WrapAlgorithm
from shared.errors import KeyDisabledError, KeyNotFoundError
from shared.rewrap._ports import DEFAULT_KEY_OPS, KeyVersionInfo

_EPOCH = datetime(2025, 1, 1, tzinfo=UTC)


@dataclass
class _Version:
    info: KeyVersionInfo
    private_key: rsa.RSAPrivateKey


class LocalKeyVersionSource:
    """A :class:`KeyVersionSource` over RSA private keys held in memory."""

    def __init__(self) -> None:
        self._keys: dict[str, dict[str, _Version]] = {}

    def add_version(
        self,
        key_ref: str,
        version: str,
        private_key: rsa.RSAPrivateKey,
        *,
        enabled: bool = True,
        created: datetime | None = None,
        hsm: bool = False,
        key_ops: tuple[str, ...] = DEFAULT_KEY_OPS,
    ) -> str:
        """Add a version (created after every existing one unless ``created`` says otherwise);
        returns its full key id."""
        versions = self._keys.setdefault(_norm(key_ref), {})
        if created is None:
            created = _EPOCH + timedelta(days=len(versions))
        info = KeyVersionInfo(
            version=version.lower(),
            enabled=enabled,
            created=created,
            key_type="RSA-HSM" if hsm else "RSA",
            key_size=private_key.key_size,
            key_ops=key_ops,
        )
        versions[version.lower()] = _Version(info, private_key)
        return f"{key_ref.rstrip('/')}/{version.lower()}"

    def set_enabled(self, key_ref: str, version: str, enabled: bool) -> None:
        entry = self._keys[_norm(key_ref)][version.lower()]
        entry.info = replace(entry.info, enabled=enabled)

    def delete_version(self, key_ref: str, version: str) -> None:
        del self._keys[_norm(key_ref)][version.lower()]

    def private_key(self, key_id: str) -> rsa.RSAPrivateKey:
        """The private key of a versioned key id (tests use it to check unwraps)."""
        key_ref, _, version = key_id.rpartition("/")
        return self._keys[_norm(key_ref)][version.lower()].private_key

    async def newest_enabled_version(self, key_ref: str) -> str:
        """See :meth:`KeyVersionSource.newest_enabled_version`.

        Raises:
            KeyNotFoundError: no such key, or no enabled version.
        """
        enabled = [v.info for v in self._versions(key_ref).values() if v.info.enabled]
        if not enabled:
            raise KeyNotFoundError(f"{key_ref} has no enabled version", status=404)
        return max(enabled, key=lambda info: info.created).version

    async def versions(self, key_ref: str) -> Sequence[KeyVersionInfo]:
        return [v.info for v in self._versions(key_ref).values()]

    async def key_version(self, key_id: str) -> KeyVersionInfo:
        """See :meth:`KeyVersionSource.key_version`.

        Raises:
            KeyNotFoundError: no such key or version.
        """
        key_ref, _, version = key_id.rpartition("/")
        entry = self._versions(key_ref).get(version.lower())
        if entry is None:
            raise KeyNotFoundError(f"{key_id} does not exist", status=404)
        return entry.info

    async def wrapper(self, key_id: str, algorithm: WrapAlgorithm) -> _LocalVaultWrapper:
        """See :meth:`KeyVersionSource.wrapper`.

        Raises:
            KeyNotFoundError: no such key or version.
            UnsupportedAlgorithmError: not an RSA algorithm.
        """
        key_ref, _, version = key_id.rpartition("/")
        entry = self._versions(key_ref).get(version.lower())
        if entry is None:
            raise KeyNotFoundError(f"{key_id} does not exist", status=404)
        inner = LocalRsaWrapper(
            key_id,
            private_key=entry.private_key,
            algorithm=algorithm,
            allow_legacy_rsa1_5=True,
        )
        return _LocalVaultWrapper(self, key_ref, version.lower(), inner)

    def _versions(self, key_ref: str) -> dict[str, _Version]:
        versions = self._keys.get(_norm(key_ref))
        if versions is None:
            raise KeyNotFoundError(f"{key_ref} does not exist", status=404)
        return versions

    def _check_usable(self, key_ref: str, version: str, operation: str) -> None:
        entry = self._keys.get(_norm(key_ref), {}).get(version)
        if entry is None:
            raise KeyNotFoundError(f"{key_ref}/{version} does not exist", status=404)
        if not entry.info.enabled:
            raise KeyDisabledError(f"{key_ref}/{version} is disabled", status=403)
        ops = entry.info.key_ops
        if ops is not None and operation not in ops:
            # As Key Vault: 403 KeyOperationForbidden (docs/emulator.md, refusals).
            raise KeyDisabledError(
                f"{operation} is not permitted on {key_ref}/{version}",
                status=403,
                code="KeyOperationForbidden",
            )


class _LocalVaultWrapper:
    """An AsyncKeyWrapper that, like the vault, refuses a disabled or deleted version."""

    def __init__(
        self, source: LocalKeyVersionSource, key_ref: str, version: str, inner: LocalRsaWrapper
    ) -> None:
        self._source = source
        self._key_ref = key_ref
        self._version = version
        self._inner = inner

    @property
    def key_id(self) -> str:
        return self._inner.key_id

    @property
    def algorithm(self) -> WrapAlgorithm:
        return self._inner.algorithm

    async def wrap(self, dek: DataKey) -> bytes:
        """Raises KeyNotFoundError/KeyDisabledError for a deleted or disabled version (the Key
        Vault adapter refuses a local wrap under such a version, as the vault would)."""
        self._source._check_usable(self._key_ref, self._version, "wrapKey")
        return self._inner.wrap(dek)

    async def unwrap(self, wrapped: bytes) -> DataKey:
        """Raises KeyNotFoundError/KeyDisabledError as the vault would, else unwraps."""
        self._source._check_usable(self._key_ref, self._version, "unwrapKey")
        return self._inner.unwrap(wrapped)

    def __repr__(self) -> str:
        return f"LocalVaultWrapper({self._inner!r})"


def _norm(key_ref: str) -> str:
    return key_ref.strip().rstrip("/").lower()
