"""Key-level administration keyward needs beyond wrap/unwrap: list a vault's keys (the sweep
finds keys whose rotation event was missed) and rotate a key.

Rotation is used for ``KeyNearExpiry`` when ``KEYWARD_AUTO_ROTATE_NEAR_EXPIRY`` is true.
The rotation itself emits ``KeyNewVersionCreated``, which starts the rewrap, so this adapter
does nothing else. A duplicate near-expiry delivery must not rotate twice: the rotation
happens only while the key's current version is still the one the event was about.
"""

from __future__ import annotations

from shared.adapters._azure_errors import translate
from shared.adapters._keyvault_aio import AsyncKeyVaultAdapter
from shared.errors import VaultNotAllowedError


class KeyVaultAdmin:
    """Satisfies ``shared.services._ports.KeyRotator`` and ``KeyLister``.

    Built over the process's one :class:`AsyncKeyVaultAdapter` and its ``KeyClient`` per
    vault (same transport, same allow-list), so administration opens no clients of its own.
    """

    def __init__(self, adapter: AsyncKeyVaultAdapter) -> None:
        self._adapter = adapter
        self._allow_list = adapter.config.allow_list

    async def rotate(self, key_ref: str, *, if_current_version: str | None) -> str | None:
        """Rotate ``key_ref`` if its current version is still ``if_current_version``.

        Raises:
            VaultNotAllowedError: the vault is not on the allow-list (no request made).
            ServiceError: the vault refused or failed (AccessDeniedError without the rotate
                permission, ThrottledError, TransientServiceError...).
        """
        key = self._allow_list.check_key_id(key_ref, require_version=False)
        client = self._adapter.vault_key_client(key.vault_url)
        try:
            current = await client.get_key(key.name)
            current_version = (current.properties.version or "").lower()
            if if_current_version and current_version != if_current_version.lower():
                return None
            rotated = await client.rotate_key(key.name)
        except Exception as error:
            raise translate(error, operation="rotate key", key_id=key.id) from None
        return rotated.properties.version

    async def list_keys(self, vault_url: str) -> list[str]:
        """The unversioned ids of the vault's keys that have at least one enabled version.

        Raises:
            VaultNotAllowedError: the vault is not on the allow-list (no request made).
            ServiceError: the vault refused or failed.
        """
        allowed = [v for v in self._allow_list.vaults if v.url == vault_url.rstrip("/").lower()]
        if not allowed:
            raise VaultNotAllowedError(f"vault {vault_url} is not on the keyward vault allow-list")
        client = self._adapter.vault_key_client(allowed[0].url)
        found: list[str] = []
        try:
            async for properties in client.list_properties_of_keys():
                if properties.name and properties.managed is not True:
                    found.append(f"{allowed[0].url}/keys/{properties.name}")
        except Exception as error:
            raise translate(error, operation="list keys", key_id=allowed[0].url) from None
        return found
