"""The one capability every key-encryption key offers: wrap and unwrap a data key.

Like Tink's ``Aead``, it is deliberately tiny. The Key Vault wrapper, the local RSA wrapper
and the local AES-KW wrapper all satisfy it, so the rewrap engine never knows which it has.
The wrapper is injected into whoever needs it, never built inside them.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from shared.crypto._algorithms import WrapAlgorithm
from shared.crypto._data_key import DataKey


@runtime_checkable
class KeyWrapper(Protocol):
    """Wraps and unwraps key material under one *versioned* key-encryption key."""

    @property
    def key_id(self) -> str:
        """The full versioned key id (``https://{vault}/keys/{name}/{version}``)."""
        ...

    @property
    def algorithm(self) -> WrapAlgorithm: ...

    def wrap(self, dek: DataKey) -> bytes:
        """Wrap ``dek``; the result is only meaningful with this key id and algorithm."""
        ...

    def unwrap(self, wrapped: bytes) -> DataKey:
        """Unwrap; raises IntegrityError when ``wrapped`` was not made by this key."""
        ...


@runtime_checkable
class AsyncKeyWrapper(Protocol):
    """The same capability for asyncio callers (the rewrap engine runs many at once)."""

    @property
    def key_id(self) -> str: ...

    @property
    def algorithm(self) -> WrapAlgorithm: ...

    async def wrap(self, dek: DataKey) -> bytes: ...

    async def unwrap(self, wrapped: bytes) -> DataKey: ...


class SyncToAsyncWrapper:
    """Adapts a synchronous (local, CPU-only) KeyWrapper to AsyncKeyWrapper."""

    def __init__(self, inner: KeyWrapper) -> None:
        self._inner = inner

    @property
    def key_id(self) -> str:
        return self._inner.key_id

    @property
    def algorithm(self) -> WrapAlgorithm:
        return self._inner.algorithm

    async def wrap(self, dek: DataKey) -> bytes:
        return self._inner.wrap(dek)

    async def unwrap(self, wrapped: bytes) -> DataKey:
        return self._inner.unwrap(wrapped)

    def __repr__(self) -> str:
        return f"SyncToAsyncWrapper({self._inner!r})"
