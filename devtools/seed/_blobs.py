"""Writing client-side encrypted blobs the way applications do: azure-storage-blob, v2.0.

For the demo and the benchmark (the 64 MiB case and many small blobs): the SDK itself
encrypts, wrapping each blob's content key with a keyward ``KeyWrapper`` through
:class:`BlobKeyEncryptionKey`, so what the blob store then rewraps is exactly what real
writers produce.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Mapping

from azure.core.exceptions import AzureError
from azure.storage.blob.aio import ContainerClient

from devtools.blob_kek import BlobKeyEncryptionKey
from shared.adapters._azure_errors import translate
from shared.crypto import KeyWrapper
from shared.errors import InvalidInputError

#: The only protocol azure-storage-blob (Python) writes.
WRITE_PROTOCOL = "2.0"
#: Uploads in flight at once while seeding.
MAX_CONCURRENT_UPLOADS = 8
#: Blobs started per round of uploads.
SEED_ROUND = 1000
#: Upper bound on one seeding run.
MAX_SEED_BLOBS = 1_000_000


async def upload_encrypted(
    container: ContainerClient,
    name: str,
    data: bytes,
    wrapper: KeyWrapper,
    *,
    metadata: Mapping[str, str] | None = None,
) -> None:
    """Upload ``data`` encrypted client-side (protocol 2.0) under ``wrapper``'s key.

    Raises:
        ServiceError: the upload was refused (translated).
    """
    blob = container.get_blob_client(name)
    blob.require_encryption = True
    blob.encryption_version = WRITE_PROTOCOL
    blob.key_encryption_key = BlobKeyEncryptionKey(wrapper)
    try:
        await blob.upload_blob(data, metadata=dict(metadata or {}), overwrite=True)
    except AzureError as error:
        raise translate(error, "upload encrypted blob") from None


async def seed_blobs(
    container: ContainerClient,
    wrapper: KeyWrapper,
    count: int,
    *,
    size: int = 1024,
    prefix: str = "blob-",
    content: Callable[[int], bytes] | None = None,
) -> int:
    """Upload ``count`` encrypted blobs named ``{prefix}{index:09d}``; returns the count.

    Args:
        content: bytes of blob ``i`` (default: ``size`` random bytes).

    Raises:
        InvalidInputError: a count out of bounds.
        ServiceError: an upload was refused.
    """
    if not 0 <= count <= MAX_SEED_BLOBS:
        raise InvalidInputError(f"count must be 0..{MAX_SEED_BLOBS}")
    gate = asyncio.Semaphore(MAX_CONCURRENT_UPLOADS)

    async def one(index: int) -> None:
        data = content(index) if content else os.urandom(size)
        async with gate:
            await upload_encrypted(container, f"{prefix}{index:09d}", data, wrapper)

    for first in range(0, count, SEED_ROUND):  # bounded rounds: memory stays flat
        await asyncio.gather(*(one(i) for i in range(first, min(first + SEED_ROUND, count))))
    return count
