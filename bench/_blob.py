"""Scenario (e): Storage bytes per blob to move a client-side encrypted blob to a new key
version, keyward's metadata rewrap versus a download and re-upload.

One blob of ``size_mib`` MiB is written by azure-storage-blob itself (protocol 2.0, through
:func:`devtools.seed.upload_encrypted`). Then, ``repeats`` times each:

* keyward: rotate the key, run the engine over :class:`~shared.adapters.dek_blob.BlobDekStore`,
  read a :class:`~devtools.traffic.TrafficCounter` on its client (list with metadata, Set Blob
  Metadata);
* baseline: rotate the key, then with azure-storage-blob's sync client (the same
  ``TrafficCounter`` as its ``raw_response_hook``): get properties, download and decrypt
  (unwrap through Key Vault), re-upload encrypted under the new version with If-Match.

Both count Storage traffic only; both also send one unwrap to Key Vault per blob (about
1 KiB each way), not counted. The baseline checks the content's SHA-256 each time, which also
proves keyward's rewrapped blob still decrypts.
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from typing import Any

from azure.core import MatchConditions
from azure.storage.blob import ContainerClient
from azure.storage.blob.aio import ContainerClient as AioContainerClient

from devtools.blob_kek import BlobKeyEncryptionKey
from devtools.emulator.client import EmulatorClient
from devtools.emulator.credential import AsyncEmulatorCredential, EmulatorCredential
from devtools.keyvault_sync import KeyVaultAdapter
from devtools.seed import upload_encrypted
from devtools.traffic import TrafficCounter
from shared.adapters import AsyncKeyVaultAdapter
from shared.adapters.dek_blob import BlobDekStore
from shared.crypto import LocalRsaWrapper, VaultAllowList
from shared.rewrap import EngineSettings, InMemoryJobStore, JobStatus, RewrapEngine

BLOB_NAME = "big.bin"
EXTRA_METADATA = {"owner": "bench", "classification": "internal"}
_IF_MATCH = MatchConditions.IfNotModified


async def blob_job(spec: dict[str, Any]) -> dict[str, Any]:
    world = spec["world"]
    size = int(float(spec["size_mib"]) * 2**20)
    repeats = int(spec.get("repeats", 3))
    allow = VaultAllowList.parse(f"{world['vault']}={world['vault_url']}")
    control = EmulatorClient(world["emulator_url"], world["ca_path"])
    sync_keys = KeyVaultAdapter(
        EmulatorCredential(world["object_id"]), allow, ca_bundle=world["ca_path"]
    )
    container_name = f"bench{uuid.uuid4().hex[:16]}"
    key_name = world["key_ref"].rstrip("/").rsplit("/", 1)[-1]

    def newest_wrapper() -> LocalRsaWrapper:
        version = sync_keys.newest_enabled_version(world["key_ref"])
        kid = f"{world['key_ref']}/{version}"
        public = sync_keys.public_key(kid).rsa_public_key
        assert public is not None
        return LocalRsaWrapper(kid, public_key=public)

    data = os.urandom(size)
    digest = hashlib.sha256(data).hexdigest()
    async with AioContainerClient.from_connection_string(
        world["connection_string"], container_name
    ) as container:
        await container.create_container()
        await upload_encrypted(
            container, BLOB_NAME, data, newest_wrapper(), metadata=EXTRA_METADATA
        )
    del data

    keyward: list[dict[str, Any]] = []
    for _ in range(repeats):
        control.rotate_key(world["vault"], key_name)
        keyward.append(await _keyward_rewrap(world, allow, container_name))

    baseline: list[dict[str, Any]] = []
    for _ in range(repeats):
        control.rotate_key(world["vault"], key_name)
        baseline.append(_download_reupload(world, container_name, sync_keys, newest_wrapper()))
        if baseline[-1].pop("sha256") != digest:
            raise RuntimeError("the blob did not decrypt to its original content")
    sync_keys.close()
    control.close()
    return {"size_bytes": size, "keyward": keyward, "baseline": baseline}


async def _keyward_rewrap(
    world: dict[str, Any], allow: VaultAllowList, container_name: str
) -> dict[str, Any]:
    adapter = AsyncKeyVaultAdapter(
        AsyncEmulatorCredential(world["object_id"]),
        allow,
        ca_bundle=world["ca_path"],
        lean_unwrap=True,
    )
    traffic = TrafficCounter()
    store = BlobDekStore.from_connection_string(
        world["connection_string"], container_name, raw_response_hook=traffic
    )
    try:
        engine = RewrapEngine(
            store=store, keys=adapter, jobs=InMemoryJobStore(), settings=EngineSettings()
        )
        traffic.reset()
        report = await engine.run(world["key_ref"], restart=True)
        seen = traffic.snapshot()
    finally:
        await store.close()
        await adapter.close()
    if report.status is not JobStatus.COMPLETED or report.counters.rewrapped != 1:
        raise RuntimeError(f"blob rewrap did not complete: {report.counters}")
    return {"requests": seen.requests, "sent": seen.bytes_sent, "received": seen.bytes_received}


def _download_reupload(
    world: dict[str, Any],
    container_name: str,
    sync_keys: KeyVaultAdapter,
    new_wrapper: LocalRsaWrapper,
) -> dict[str, Any]:
    counter = TrafficCounter()
    with ContainerClient.from_connection_string(
        world["connection_string"], container_name, raw_response_hook=counter
    ) as container:
        blob = container.get_blob_client(BLOB_NAME)
        properties = blob.get_blob_properties()
        metadata = dict(properties.metadata or {})
        old_kid = json.loads(metadata.pop("encryptiondata"))["WrappedContentKey"]["KeyId"]
        blob.require_encryption = True
        blob.key_encryption_key = BlobKeyEncryptionKey(sync_keys.wrapper(old_kid))
        downloader = blob.download_blob(etag=properties.etag, match_condition=_IF_MATCH)
        content = downloader.readall()
        blob.key_encryption_key = BlobKeyEncryptionKey(new_wrapper)
        blob.encryption_version = "2.0"
        blob.upload_blob(
            content,
            metadata=metadata,
            overwrite=True,
            etag=properties.etag,
            match_condition=_IF_MATCH,
        )
    return {
        "requests": counter.requests,
        "sent": counter.bytes_sent,
        "received": counter.bytes_received,
        "sha256": hashlib.sha256(content).hexdigest(),
    }
