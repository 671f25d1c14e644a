"""The records domain's ``VaultKeys`` port over the Key Vault adapter.

``newest(key_ref)`` is what every new record (direct mode) or new intermediate key
(hierarchy mode) is wrapped under. Asking the vault for the newest enabled version on every
write would cost one list call per write, so the answer is kept for ``newest_seconds``
(one list per key per period, concurrent writers share one call). The price: for up to that
long after a rotation, writes still wrap under the version before it, which is still enabled
(a rotation never disables the old version; the rewrap job and its verification pass move
those rows on). Errors are never cached.

The allow-list is checked before any call: ``AsyncKeyVaultAdapter`` refuses a vault that is
not on it (``VaultNotAllowedError``) before a token is requested; ``newest`` checks the key
ref first too, so a refused vault never gets a cache slot.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from shared.adapters._keyvault_aio import AsyncKeyVaultAdapter
from shared.crypto import DEFAULT_WRAP_ALGORITHM, AsyncKeyWrapper, WrapAlgorithm

#: How long the newest enabled version of a key is trusted before the vault is asked again.
DEFAULT_NEWEST_VERSION_SECONDS = 60.0


class VaultKeysAdapter:
    """``shared.records.VaultKeys`` over one :class:`AsyncKeyVaultAdapter` (not owned)."""

    def __init__(
        self,
        adapter: AsyncKeyVaultAdapter,
        *,
        newest_seconds: float = DEFAULT_NEWEST_VERSION_SECONDS,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._adapter = adapter
        self._ttl, self._monotonic = newest_seconds, monotonic
        self._newest: dict[str, tuple[str, float]] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def newest(self, key_ref: str) -> AsyncKeyWrapper:
        """A wrapper for the newest enabled version of ``key_ref`` (cached, see the module).

        Raises:
            KeyIdError, VaultNotAllowedError: before any call.
            KeyNotFoundError: no such key or no enabled version; AccessDeniedError,
                ThrottledError, TransientServiceError: as the vault answered.
        """
        ref = self._adapter.config.check(key_ref, require_version=False).key_ref
        key_id = self._fresh(ref)
        if key_id is None:
            lock = self._locks.setdefault(ref, asyncio.Lock())
            async with lock:  # one list call per key, whoever asks meanwhile
                key_id = self._fresh(ref)
                if key_id is None:
                    version = await self._adapter.newest_enabled_version(ref)
                    key_id = f"{ref}/{version}"
                    self._newest[ref] = (key_id, self._monotonic())
        return await self._adapter.wrapper(key_id)

    def _fresh(self, ref: str) -> str | None:
        cached = self._newest.get(ref)
        if cached is None or self._monotonic() - cached[1] >= self._ttl:
            return None
        return cached[0]

    async def version(self, key_id: str, algorithm: WrapAlgorithm | None = None) -> AsyncKeyWrapper:
        """A wrapper for exactly ``key_id`` (versioned), after the allow-list check, that
        unwraps with ``algorithm`` (the row's; ``None`` = RSA-OAEP-256).

        Raises:
            KeyIdError, VaultNotAllowedError: malformed, unversioned or not allowed.
            UnsupportedAlgorithmError: RSA1_5 unless the adapter allows legacy reads.
        """
        return await self._adapter.wrapper(key_id, algorithm or DEFAULT_WRAP_ALGORITHM)

    def forget(self, key_ref: str | None = None) -> None:
        """Drop the cached newest version of ``key_ref`` (all keys when ``None``)."""
        if key_ref is None:
            self._newest.clear()
        else:
            self._newest.pop(
                self._adapter.config.check(key_ref, require_version=False).key_ref, None
            )

    def __repr__(self) -> str:
        return f"VaultKeysAdapter(keys={len(self._newest)}, newest_seconds={self._ttl})"
