"""``open_envelope``: everything an application needs to encrypt and read records, built once.

An application names a Key Vault key and a store; this builds the store's adapters (Azure
Table by connection string, or by account URL with a credential; a local SQLite file), the
Key Vault adapter (``DefaultAzureCredential`` unless given one) behind the vault allow-list,
and the ``Envelope`` over them, and closes all of it on exit. The caches and the mode TTL
come from the ``KEYWARD_*`` settings an application may set (``envelope_from_env``) unless
``settings=`` says otherwise.

Why the allow-list defaults to the key's own vault: a record names the key version that
wrapped it, so a tampered row could otherwise send unwrap requests (and tokens) to any
vault; an application that reads records wrapped in other vaults lists them (same syntax as
``KEYWARD_VAULT_ALLOWLIST``, which is read when set).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import TYPE_CHECKING

from shared.crypto import VaultAllowList, parse_key_id
from shared.errors import ConfigurationError, InvalidInputError
from shared.records import Envelope, EnvelopeSettings, StoreMode
from shared.settings import SPEC_BY_NAME, envelope_from_env

if TYPE_CHECKING:
    from azure.core.credentials_async import AsyncTokenCredential

#: The data table and KEK table an application uses unless told otherwise: the Function
#: App's defaults (``KEYWARD_DEK_TABLE``, ``KEYWARD_KEK_TABLE``), so both see one store.
DEFAULT_TABLE = SPEC_BY_NAME["KEYWARD_DEK_TABLE"].default or ""
DEFAULT_KEK_TABLE = SPEC_BY_NAME["KEYWARD_KEK_TABLE"].default or ""
ALLOWLIST_SETTING = "KEYWARD_VAULT_ALLOWLIST"


@asynccontextmanager
async def open_envelope(
    key: str,
    *,
    connection_string: str | None = None,
    account_url: str | None = None,
    sqlite_path: str | None = None,
    table: str = DEFAULT_TABLE,
    kek_table: str = DEFAULT_KEK_TABLE,
    mode: StoreMode | str | None = None,
    credential: AsyncTokenCredential | None = None,
    allow_list: VaultAllowList | str | None = None,
    settings: EnvelopeSettings | None = None,
    ca_bundle: str | None = None,
) -> AsyncIterator[Envelope]:
    """An :class:`~shared.records.Envelope` over one store and one Key Vault key.

    ``async with open_envelope(KEY_URL, connection_string=CONN) as envelope:`` then
    ``await envelope.encrypt(tenant, record_id, data)`` and ``await envelope.decrypt(tenant,
    record_id)``.

    Args:
        key: the Key Vault key's URL, unversioned (``https://VAULT.vault.azure.net/keys/NAME``);
            new records (or intermediate keys) are wrapped under its newest enabled version.
        connection_string: an Azure Storage connection string (Table store).
        account_url: the Table endpoint (``https://ACCOUNT.table.core.windows.net``), reached
            with ``credential`` (Table store).
        sqlite_path: a local SQLite file (development and tests).
        table: the data table (records and the mode row).
        kek_table: the table of intermediate keys (hierarchy mode).
        mode: the mode the application expects (``"direct"`` or ``"hierarchy"``); checked
            against the store's mode row, which an empty store takes from the first write.
            While the store migrates either way it is served (reads follow each record's
            format, writes the store's mode); once the store is in the other mode it is
            refused, reads included. ``None`` follows the store.
        credential: an async Azure credential for Key Vault (and Storage with
            ``account_url``); ``DefaultAzureCredential`` when omitted (closed on exit).
        allow_list: the vaults keyward may call (``VaultAllowList`` or the setting's text);
            default ``KEYWARD_VAULT_ALLOWLIST``, else the key's own vault.
        settings: caches and mode TTL; default read from the ``KEYWARD_*`` settings.
        ca_bundle: CA file for a development vault's TLS (the local emulator).

    Raises:
        ConfigurationError: not exactly one store, or a key on a vault the allow-list refuses.
        KeyIdError: ``key`` is not a key URL.
    """
    stores = [s for s in (connection_string, account_url, sqlite_path) if s]
    if len(stores) != 1:
        raise ConfigurationError(
            "open_envelope needs exactly one of connection_string, account_url, sqlite_path"
        )
    allowed = _allow_list(key, allow_list)
    async with AsyncExitStack() as stack:
        if credential is None:
            credential = await _default_credential(stack)
        from shared.adapters.keyvault import AsyncKeyVaultAdapter
        from shared.adapters.vault_keys import VaultKeysAdapter
        from shared.composition._record_ports import sqlite_record_ports, table_record_ports

        vault = AsyncKeyVaultAdapter(credential, allowed, ca_bundle=ca_bundle)
        stack.push_async_callback(vault.close)
        if sqlite_path:
            ports = sqlite_record_ports(sqlite_path)
        else:
            ports = table_record_ports(
                table, kek_table, connection_string=connection_string,
                account_url=account_url, credential=credential,
            )  # fmt: skip
        stack.push_async_callback(ports.aclose)
        envelope = Envelope(
            records=ports.records,
            keks=ports.keks,
            modes=ports.modes,
            vault=VaultKeysAdapter(vault),
            key_ref=key,
            mode=_mode(mode),
            settings=settings or envelope_from_env(),
        )
        stack.push_async_callback(envelope.aclose)
        yield envelope


def _allow_list(key: str, given: VaultAllowList | str | None) -> VaultAllowList:
    if isinstance(given, VaultAllowList):
        return given
    text = given if given is not None else os.environ.get(ALLOWLIST_SETTING, "")
    if text.strip():
        return VaultAllowList.parse(text)
    try:
        vault_url = parse_key_id(key, require_version=False).vault_url
    except ValueError as error:
        raise ConfigurationError(
            f"{error}; for a development vault pass allow_list='name=https://127.0.0.1:PORT'"
        ) from None
    return VaultAllowList.parse([vault_url])


def _mode(mode: StoreMode | str | None) -> StoreMode | None:
    if mode is None or isinstance(mode, StoreMode):
        return mode
    try:
        return StoreMode(mode)
    except ValueError:
        raise InvalidInputError(f"mode must be 'direct' or 'hierarchy', not {mode!r}") from None


async def _default_credential(stack: AsyncExitStack) -> AsyncTokenCredential:
    from azure.identity.aio import DefaultAzureCredential

    client_id = os.environ.get("AZURE_CLIENT_ID")
    credential = DefaultAzureCredential(managed_identity_client_id=client_id)
    stack.push_async_callback(credential.close)
    return credential
