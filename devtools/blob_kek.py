"""A key-encryption-key object for azure-storage-blob client-side encryption.

azure-storage-blob duck-types its KEK (``wrap_key``, ``unwrap_key``, ``get_kid``,
``get_key_wrap_algorithm``). This adapter builds one from any keyward ``KeyWrapper`` (Key
Vault, local RSA, local AES-KW), so blobs are written and read under the same versioned key
ids keyward rotates. ``get_kid`` returns the wrapper's full versioned key id, which the SDK
stores as ``WrappedContentKey.KeyId``: exactly what the blob store scans by.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from shared.crypto import DataKey, KeyWrapper, WrapAlgorithm
from shared.errors import UnsupportedAlgorithmError


class BlobKeyEncryptionKey:
    """azure-storage-blob ``KeyEncryptionKey`` over a keyward ``KeyWrapper``."""

    def __init__(self, wrapper: KeyWrapper) -> None:
        self._wrapper = wrapper

    def wrap_key(self, key: bytes) -> bytes:
        """Wrap the SDK's material (``protocol prefix || CEK`` for v2)."""
        with DataKey.from_bytes(key) as material:
            return self._wrapper.wrap(material)

    def unwrap_key(self, key: bytes, algorithm: str) -> bytes:
        """Unwrap for the SDK, which needs plain ``bytes`` back (it strips the prefix itself).

        Raises:
            UnsupportedAlgorithmError: the blob names another algorithm than this key's.
            IntegrityError: the wrapped key was not made by this key.
        """
        if WrapAlgorithm.parse(algorithm) is not self._wrapper.algorithm:
            raise UnsupportedAlgorithmError(
                f"blob was wrapped with {algorithm}; {self._wrapper.key_id} uses "
                f"{self._wrapper.algorithm.value}"
            )
        with self._wrapper.unwrap(key) as material:
            return material.reveal()

    def get_kid(self) -> str:
        return self._wrapper.key_id

    def get_key_wrap_algorithm(self) -> str:
        return self._wrapper.algorithm.value

    def __repr__(self) -> str:
        return f"BlobKeyEncryptionKey({self._wrapper.key_id!r})"


def key_resolver(
    wrappers: Iterable[KeyWrapper],
) -> Callable[[str], BlobKeyEncryptionKey | None]:
    """A ``key_resolver_function`` for the SDK: the KEK whose versioned id the blob names."""
    by_id = {wrapper.key_id: BlobKeyEncryptionKey(wrapper) for wrapper in wrappers}
    return by_id.get
