"""The Key Vault adapter: key wrappers and key metadata over azure-keyvault-keys.

This module and its private siblings (``_keyvault_common``, ``_keyvault_aio``,
``_keyvault_rest``, ``_keyvault_admin``) are the only code in ``shared``
that imports ``azure.keyvault``. It offers:

* :class:`AsyncKeyVaultAdapter` (``aio``): one per process and credential (a synchronous
  twin for development tools lives in ``devtools.keyvault_sync``). ``wrapper(versioned_key_id)``
  returns a cached wrapper per key version; all clients share ONE HTTP transport (one
  ``aiohttp`` session, keep-alive). They also read key metadata: ``versions``,
  ``newest_enabled_version``, ``public_key``.
* :class:`AsyncKeyVaultKeyWrapper`: an ``AsyncKeyWrapper`` over ``CryptographyClient``. The key
  is fetched once per version; wrap then runs locally with the public key when the key's
  ``key_ops`` allow ``wrapKey`` (the SDK decides and does it); unwrap always runs in the vault.
* :class:`LeanAsyncKeyVaultKeyWrapper` (``AsyncKeyVaultAdapter(lean_unwrap=True)``): the same
  wrap, and unwrap as one direct REST call on the shared session (see ``_keyvault_rest``).

Before any call, the key id is checked against the :class:`~shared.crypto.VaultAllowList`;
an Azure vault not on the list raises ``VaultNotAllowedError``, any other host ``KeyIdError``
(its parent), with no network I/O and no token requested. A development origin
(the local emulator, ``https://127.0.0.1:PORT``) is only reachable through an explicit
allow-list entry; for those the SDK's challenge-resource check is off (the emulator is not a
``*.vault.azure.net`` host). TLS verification is never disabled: ``ca_bundle`` names the CA
file that verifies the emulator's certificate.

Why the key is fetched with ``KeyClient.get_key`` and handed to ``CryptographyClient`` as a
``KeyVaultKey`` (one GET per version, as the SDK would do itself from a key id string): built
from a string, the SDK's local wrap ignores the key's ``enabled``, ``nbf`` and ``exp``
attributes and silently falls back to a remote call when the fetch fails. With the key in
hand the adapter refuses a local wrap under a disabled, expired or not-yet-valid version (as
the vault would) using an injectable clock, and maps a failed fetch like any other error.

AES keys (Managed HSM ``oct-HSM``, ``A256KW``) never reach the SDK's local crypto: with no
``k`` in the fetched key, azure-keyvault-keys 4.11.3 would "wrap" with a random local AES key
(see ``_keyvault_common.is_symmetric``); their wrap and unwrap go to the HSM.

SDK exceptions never leave this module (``shared.adapters._azure_errors`` maps them), and are never
chained: a remote wrapKey request carries the plaintext DEK.
"""

from __future__ import annotations

from shared.adapters._keyvault_aio import AsyncKeyVaultAdapter, AsyncKeyVaultKeyWrapper
from shared.adapters._keyvault_common import (
    API_VERSION,
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_KEY_REFRESH_SECONDS,
    DEFAULT_MAX_CONNECTIONS,
    DEFAULT_READ_TIMEOUT,
    KeyVersionProperties,
    PublicKeyInfo,
    usable_now,
)
from shared.adapters._keyvault_rest import LeanAsyncKeyVaultKeyWrapper

__all__ = [
    "API_VERSION",
    "DEFAULT_CONNECT_TIMEOUT",
    "DEFAULT_KEY_REFRESH_SECONDS",
    "DEFAULT_MAX_CONNECTIONS",
    "DEFAULT_READ_TIMEOUT",
    "AsyncKeyVaultAdapter",
    "AsyncKeyVaultKeyWrapper",
    "KeyVersionProperties",
    "LeanAsyncKeyVaultKeyWrapper",
    "PublicKeyInfo",
    "usable_now",
]
