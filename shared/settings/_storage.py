"""Where keyward's storage lives and how it authenticates, without secrets in settings.

Resolution order: ``KEYWARD_STORAGE_ACCOUNT_URL`` (managed identity); the connection setting
named by ``KEYWARD_STORAGE_CONNECTION`` when it holds a connection string; its identity-based
form (``<name>__accountName`` or the three ``<name>__<service>ServiceUri``). A connection string
with an account key or SAS is refused, except Azurite's published development account.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from shared.errors import SettingError
from shared.settings._specs import Reader
from shared.settings._values import (
    STORAGE_SERVICES,
    apply,
    https_origin,
)

_AZURITE_ACCOUNT = "devstoreaccount1"
_STORAGE_HOST = re.compile(r"^([a-z0-9]{3,24})\.(?:blob|queue|table|dfs|file)\.([a-z0-9.-]+)$")
_SETTING_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class StorageTarget:
    """Where keyward's tables, queues and blobs live, and how it authenticates.

    Either ``connection_string`` is set (Azurite, or a key-less string) or the three service
    URLs are, to be used with managed identity.
    """

    connection_setting: str
    connection_string: str | None = field(default=None, repr=False)
    blob_url: str | None = None
    queue_url: str | None = None
    table_url: str | None = None

    @property
    def uses_identity(self) -> bool:
        return self.connection_string is None


def resolve_storage(env: Mapping[str, str]) -> StorageTarget:
    """Resolve storage: account URL, identity-based connection, or Azurite's dev string."""
    reader = Reader(env)
    connection = reader.get("KEYWARD_STORAGE_CONNECTION", setting_name)
    account_url = reader.optional("KEYWARD_STORAGE_ACCOUNT_URL", storage_account_url)
    if account_url is not None:
        return StorageTarget(connection, None, *account_url)
    value = env.get(connection, "").strip()
    if value:
        _refuse_keyed_connection_string(connection, value)
        return StorageTarget(connection, value)
    account_name = env.get(f"{connection}__accountName", "").strip()
    if account_name:
        urls = apply(
            f"{connection}__accountName",
            f"https://{account_name}.blob.core.windows.net",
            storage_account_url,
        )
        return StorageTarget(connection, None, *urls)
    service_urls = [env.get(f"{connection}__{s}ServiceUri", "").strip() for s in STORAGE_SERVICES]
    if all(service_urls):
        checked = [
            apply(f"{connection}__{s}ServiceUri", u, lambda v: https_origin(v, allow_path=True)[0])
            for s, u in zip(STORAGE_SERVICES, service_urls, strict=True)
        ]
        return StorageTarget(connection, None, *checked)
    raise SettingError(
        connection,
        "is not set: give KEYWARD_STORAGE_ACCOUNT_URL, an identity-based connection "
        f"({connection}__accountName), or Azurite's UseDevelopmentStorage=true",
    )


def setting_name(raw: str) -> str:
    if not _SETTING_NAME.match(raw):
        raise ValueError(
            "must name the setting holding the connection (e.g. AzureWebJobsStorage), "
            "not hold the connection itself"
        )
    return raw


def storage_account_url(raw: str) -> tuple[str, str, str]:
    _, host = https_origin(raw, allow_path=False)
    match = _STORAGE_HOST.match(host)
    if match is None:
        raise ValueError(
            f"{raw[:100]!r} is not a storage account URL (https://<account>.blob.core.windows.net)"
        )
    account, suffix = match.groups()
    blob, queue, table = (f"https://{account}.{s}.{suffix}" for s in STORAGE_SERVICES)
    return blob, queue, table


def _refuse_keyed_connection_string(name: str, value: str) -> None:
    pairs = {
        key.strip().lower(): val.strip()
        for key, _, val in (part.partition("=") for part in value.split(";"))
        if key.strip()
    }
    if pairs.get("usedevelopmentstorage", "").lower() == "true":
        return
    if pairs.get("accountname", "").lower() == _AZURITE_ACCOUNT:
        return  # Azurite's well-known development key is published, not a secret
    if "accountkey" in pairs or "sharedaccesssignature" in pairs:
        raise SettingError(
            name,
            "holds an account key or SAS; keyward uses managed identity: set "
            f"KEYWARD_STORAGE_ACCOUNT_URL or an identity-based {name}__accountName instead",
        )
