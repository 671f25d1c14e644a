"""The issue's bar for blobs, end to end: Key Vault (keyward's emulator, real SDK), blobs on
Azurite written by azure-storage-blob (2.0) and as .NET writes them (2.1), the real rewrap
engine over the blob store, the old key version disabled, and every blob still decrypts
byte-identical through azure-storage-blob with a Key Vault-backed key-encryption key.
"""

from __future__ import annotations

import asyncio
import json
import os
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError

from devtools.azurite import AzuriteInfo
from devtools.blob_kek import BlobKeyEncryptionKey
from devtools.keyvault_sync import KeyVaultAdapter
from shared.adapters import AsyncKeyVaultAdapter
from shared.adapters.dek_blob import BlobDekStore
from shared.adapters.dek_blob._format import MAX_METADATA_BYTES, metadata_size
from shared.crypto import VaultAllowList
from shared.rewrap import EngineSettings, InMemoryJobStore, JobStatus, RewrapEngine
from tests.stores.blob_support import (
    download,
    download_resolved,
    metadata_of,
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
        respelled = respell_key_ids(container, key_ref, ["v20/1", "v20/4", "v21/2"])
        vault.client.rotate_key(vault.name, KEY_NAME)

        report = asyncio.run(rewrap(vault, allow, azurite, container.container_name, key_ref))
        assert report.status is JobStatus.COMPLETED
        assert report.counters.rewrapped == len(data)
        assert report.counters.failed == {}
        new = report.state.target_version
        assert new != old

        # Every blob keeps its previous wrap (the old one, as it was spelled) in metadata the
        # SDK ignores, within Azure's 8 KiB metadata limit.
        for name in data:
            metadata = metadata_of(container, name)
            previous = json.loads(metadata["keywardpreviouswrap"])["KeyId"]
            assert previous == respelled.get(name, f"{key_ref}/{old}")
            assert metadata_size(metadata) < MAX_METADATA_BYTES
        spelling = key_ref.replace(KEY_NAME, KEY_NAME.upper())  # counted whole, as asked
        counts = asyncio.run(counts_of(azurite, container.container_name, spelling))
        assert {c.key_id: (c.current, c.previous) for c in counts} == {
            f"{spelling}/{old}": (0, len(data)),
            f"{spelling}/{new}": (len(data), 0),
        }

        keys = vault.key_client()
        keys.update_key_properties(KEY_NAME, old, enabled=False)
        new_wrapper = sync.wrapper(f"{key_ref}/{new}")
        for name, content in data.items():
            # A blob keeps its writer's spelling of the key; only the version moved on, so an
            # application whose KEK reports that spelling (the SDK compares kids exactly)
            # reads it as before.
            kek: Any = BlobKeyEncryptionKey(new_wrapper)
            if name in respelled:
                spelled = respelled[name].rsplit("/", 1)[0] + f"/{new}"
                assert wrapped_key_id(container, name) == spelled
                kek = SpelledKek(kek, spelled)
                assert download(container, name, resolver={spelled: kek}.get) == content
            else:
                assert wrapped_key_id(container, name) == f"{key_ref}/{new}"
                assert download_resolved(container, name, new_wrapper) == content
            assert download(container, name, kek=kek) == content
        with pytest.raises(HttpResponseError):  # the disabled version opens nothing now
            download(container, "v20/1", kek=BlobKeyEncryptionKey(old_wrapper))

        again = asyncio.run(rewrap(vault, allow, azurite, container.container_name, key_ref))
        assert again.counters.rewrapped == 0
    finally:
        sync.close()


class SpelledKek:
    """A KEK that names its key as an application spelling it otherwise would."""

    def __init__(self, kek: Any, kid: str) -> None:
        self._kek, self._kid = kek, kid

    def wrap_key(self, key: bytes) -> bytes:
        return bytes(self._kek.wrap_key(key))

    def unwrap_key(self, key: bytes, algorithm: str) -> bytes:
        return bytes(self._kek.unwrap_key(key, algorithm))

    def get_kid(self) -> str:
        return self._kid

    def get_key_wrap_algorithm(self) -> str:
        return str(self._kek.get_key_wrap_algorithm())


def wrapped_key_id(container: Any, name: str) -> str:
    data = json.loads(metadata_of(container, name)["encryptiondata"])
    return str(data["WrappedContentKey"]["KeyId"])


def respell_key_ids(container: Any, key_ref: str, names: list[str]) -> dict[str, str]:
    """Rewrite the KeyId of ``names`` as an application spelling the key otherwise would have
    (upper-case vault host and key name): the same key, so the rewrap must move them too."""
    host, key_name = key_ref.removeprefix("https://").split("/keys/")
    spelled = {}
    for name in names:
        metadata = metadata_of(container, name)
        data = json.loads(metadata["encryptiondata"])
        version = data["WrappedContentKey"]["KeyId"].rsplit("/", 1)[1]
        key_id = f"https://{host.upper()}/keys/{key_name.upper()}/{version}"
        data["WrappedContentKey"]["KeyId"] = spelled[name] = key_id
        metadata["encryptiondata"] = json.dumps(data)
        container.get_blob_client(name).set_blob_metadata(metadata)
    return spelled


async def counts_of(azurite: AzuriteInfo, container: str, key_ref: str) -> Any:
    store = BlobDekStore.from_connection_string(azurite.connection_string, container)
    try:
        return await store.version_counts(key_ref)
    finally:
        await store.close()


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
