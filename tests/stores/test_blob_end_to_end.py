"""The issue's bar for blobs, end to end: Key Vault (keyward's emulator, real SDK), blobs on
Azurite written by azure-storage-blob (2.0) and as .NET writes them (2.1), the real rewrap
engine over the blob store, the old key version disabled, and every blob still decrypts
byte-identical through azure-storage-blob with a Key Vault-backed key-encryption key.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError

from devtools.azurite import AzuriteInfo
from devtools.blob_kek import BlobKeyEncryptionKey
from devtools.keyvault_sync import KeyVaultAdapter
from shared.adapters import AsyncKeyVaultAdapter
from shared.adapters.dek_blob import BlobDekStore
from shared.crypto import VaultAllowList
from shared.rewrap import EngineSettings, InMemoryJobStore, JobStatus, RewrapEngine
from tests.stores.blob_support import (
    download,
    download_resolved,
    new_container,
    upload_sdk,
    upload_v21,
)

pytestmark = [pytest.mark.azurite, pytest.mark.emulator, pytest.mark.slow]

KEY_NAME = "blob-kek"


def contents() -> dict[str, bytes]:
    return {
        **{f"v20/{i}": os.urandom(1000 * i + 1) for i in range(6)},
        "v20/two-regions": os.urandom(4 * 1024 * 1024 + 3),
        **{f"v21/{i}": os.urandom(700 * i + 5) for i in range(6)},
    }


def test_rewrap_then_disable_old_version_every_blob_still_decrypts(
    emulator_vault: Any, azurite: AzuriteInfo
) -> None:
    vault = emulator_vault
    vault.client.create_key(vault.name, KEY_NAME, kty="RSA", size=2048)
    key_ref = f"{vault.url}/keys/{KEY_NAME}"
    allow = VaultAllowList.parse(f"{vault.name}={vault.url}")
    sync = KeyVaultAdapter(vault.credential(), allow, ca_bundle=vault.emulator.ca_path)
    container = new_container(azurite.connection_string)
    data = contents()
    try:
        old = sync.newest_enabled_version(key_ref)
        old_wrapper = sync.wrapper(f"{key_ref}/{old}")
        for name, content in data.items():
            if name.startswith("v20/"):
                upload_sdk(container, name, content, old_wrapper)
            else:
                upload_v21(container, name, content, old_wrapper, region=512)
        vault.client.rotate_key(vault.name, KEY_NAME)

        report = asyncio.run(rewrap(vault, allow, azurite, container.container_name, key_ref))
        assert report.status is JobStatus.COMPLETED
        assert report.counters.rewrapped == len(data)
        assert report.counters.failed == {}
        new = report.state.target_version
        assert new != old

        keys = vault.key_client()
        keys.update_key_properties(KEY_NAME, old, enabled=False)
        new_wrapper = sync.wrapper(f"{key_ref}/{new}")
        for name, content in data.items():
            assert download(container, name, kek=BlobKeyEncryptionKey(new_wrapper)) == content
            assert download_resolved(container, name, new_wrapper) == content
        with pytest.raises(HttpResponseError):  # the disabled version opens nothing now
            download(container, "v20/1", kek=BlobKeyEncryptionKey(old_wrapper))

        again = asyncio.run(rewrap(vault, allow, azurite, container.container_name, key_ref))
        assert again.counters.rewrapped == 0
    finally:
        sync.close()


async def rewrap(
    vault: Any, allow: VaultAllowList, azurite: AzuriteInfo, container: str, key_ref: str
) -> Any:
    adapter = AsyncKeyVaultAdapter(
        vault.async_credential(), allow, ca_bundle=vault.emulator.ca_path
    )
    store = BlobDekStore.from_connection_string(azurite.connection_string, container)
    try:
        engine = RewrapEngine(
            store=store,
            keys=adapter,
            jobs=InMemoryJobStore(),
            settings=EngineSettings(workers=8, page_size=5),
        )
        return await engine.run(key_ref, restart=True)
    finally:
        await store.close()
        await adapter.close()
