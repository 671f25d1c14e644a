"""Writing client-side encrypted blobs for the blob store tests, the ways real writers do.

Protocol 2.0 blobs come from azure-storage-blob itself. Python writes nothing else, so 2.1
blobs (what .NET and Java write: configurable region size, compact JSON) are built here by
following the SDK's own decrypt path in ``azure/storage/blob/_encryption.py``: regions of
``DataLength`` bytes, each ``nonce (12) || AES-GCM(ciphertext || tag)`` with the nonce a
big-endian region counter; the wrapped key is ``b"2.1" + NUL * 5 + CEK``.
"""

from __future__ import annotations

import base64
import json
import os
import uuid
import warnings
from typing import Any

from azure.storage.blob import BlobServiceClient, ContainerClient
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from devtools.blob_kek import BlobKeyEncryptionKey, key_resolver
from shared.crypto import DataKey, KeyWrapper

GCM_NONCE_SIZE = 12
EXTRA_METADATA = {"owner": "team-a", "Classification": "Internal Use", "trace": "a=b; c=d"}


def new_container(connection_string: str) -> ContainerClient:
    service = BlobServiceClient.from_connection_string(connection_string)
    container = service.get_container_client(f"cse{uuid.uuid4().hex[:20]}")
    container.create_container()
    return container


def upload_sdk(
    container: ContainerClient, name: str, data: bytes, wrapper: KeyWrapper, version: str = "2.0"
) -> None:
    """Upload through azure-storage-blob's own client-side encryption."""
    blob = container.get_blob_client(name)
    blob.require_encryption = True
    blob.encryption_version = version
    blob.key_encryption_key = BlobKeyEncryptionKey(wrapper)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # 1.0 is deprecated; the tests write it on purpose
        blob.upload_blob(data, metadata=dict(EXTRA_METADATA), overwrite=True)


def upload_v21(
    container: ContainerClient, name: str, data: bytes, wrapper: KeyWrapper, region: int = 1024
) -> None:
    """Upload a protocol 2.1 blob as .NET writes it (compact JSON, its own region size)."""
    cek = os.urandom(32)
    body = bytearray()
    for index, start in enumerate(range(0, max(len(data), 1), region)):
        nonce = index.to_bytes(GCM_NONCE_SIZE, "big")
        body += nonce + AESGCM(cek).encrypt(nonce, data[start : start + region], None)
    with DataKey.from_bytes(b"2.1".ljust(8, b"\0") + cek) as material:
        wrapped = wrapper.wrap(material)
    encryption_data = {
        "WrappedContentKey": {
            "KeyId": wrapper.key_id,
            "EncryptedKey": base64.b64encode(wrapped).decode(),
            "Algorithm": wrapper.algorithm.value,
        },
        "EncryptionAgent": {"Protocol": "2.1", "EncryptionAlgorithm": "AES_GCM_256"},
        "EncryptedRegionInfo": {"DataLength": region, "NonceLength": GCM_NONCE_SIZE},
        "KeyWrappingMetadata": {"EncryptionLibrary": ".NET 12.24.0"},
    }
    metadata = {
        **EXTRA_METADATA,
        "encryptiondata": json.dumps(encryption_data, separators=(",", ":")),
    }
    container.get_blob_client(name).upload_blob(bytes(body), metadata=metadata, overwrite=True)


def upload_raw(container: ContainerClient, name: str, encryption_data: str) -> None:
    """A blob whose ``encryptiondata`` is whatever the test says (corrupted on purpose)."""
    metadata = {**EXTRA_METADATA, "encryptiondata": encryption_data}
    container.get_blob_client(name).upload_blob(b"x" * 64, metadata=metadata, overwrite=True)


def download(
    container: ContainerClient, name: str, *, kek: Any = None, resolver: Any = None
) -> bytes:
    """Download and decrypt with azure-storage-blob itself, encryption required."""
    blob = container.get_blob_client(name)
    blob.require_encryption = True
    blob.key_encryption_key = kek
    blob.key_resolver_function = resolver
    return blob.download_blob().readall()


def download_with(container: ContainerClient, name: str, wrapper: KeyWrapper) -> bytes:
    return download(container, name, kek=BlobKeyEncryptionKey(wrapper))


def download_resolved(container: ContainerClient, name: str, *wrappers: KeyWrapper) -> bytes:
    return download(container, name, resolver=key_resolver(wrappers))


def metadata_of(container: ContainerClient, name: str) -> dict[str, str]:
    return dict(container.get_blob_client(name).get_blob_properties().metadata)
