"""Blob store reads and writes outside the rewrap path: counting versions, forgetting wraps.

Counting lists the container once with ``include=["metadata", "snapshots", "versions",
"deleted"]``: the live blobs give the current and previous wraps, every other item is an
immutable copy (a snapshot, a previous version, a soft-deleted blob) that still needs the
version its wrap names. Copies are counted by their *current* wrap only: that is the wrap
azure-storage-blob reads, and a previous wrap inside a copy is never needed to open it.

Azure makes such copies on its own: in an account with versioning, every Set Blob Metadata
(so every rewrap) leaves the old wrap in a new previous version; with soft delete, a deleted
blob keeps its wrap until retention ends. They block retirement until their owner deletes
them. Azurite 3.37 (the test emulator) implements snapshots only: it accepts
``include=["versions", "deleted"]`` and a delete retention policy but issues no version ids,
lists no versions and deletes for good (Undelete Blob answers "not implemented"). So
snapshots are tested end to end on Azurite, and versions and soft-deleted items through the
pure classifier ``_records.immutable_copy`` on the fields a listing gives.

Forgetting drops ``keywardpreviouswrap`` from live blobs whose previous wrap is under the
version being retired, each conditional on the ETag the listing gave (a blob changed
meanwhile is skipped; run again to catch it). Blobs marked unreadable keep theirs: it may be
the only wrap that still opens them. Copies cannot be changed and are not touched.
"""

from __future__ import annotations

import asyncio
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.storage.blob.aio import ContainerClient

from shared.adapters._azure_errors import translated
from shared.adapters.dek_blob._format import (
    ENCRYPTION_METADATA,
    PREVIOUS_WRAP_METADATA,
    UNREADABLE_METADATA,
    find_entry,
    parse_encryption_data,
    previous_key_id,
)
from shared.adapters.dek_blob._records import claims, immutable_copy
from shared.errors import InvalidInputError
from shared.stores._common import VersionTally, fold_key_ref, split_key_id
from shared.stores._protocol import VersionCount

#: Everything a listing can show: azure-storage-blob's ``include`` names.
EVERY_COPY = ["metadata", "snapshots", "versions", "deleted"]


async def count_page(
    container: ContainerClient, prefix: str | None, key_ref: str, token: str | None, top: int
) -> tuple[list[VersionCount], str | None]:
    """One listing page (one request): live current and previous wraps of ``key_ref`` per
    version, and immutable copies; and the next page's marker."""
    tally, wanted = VersionTally(key_ref), fold_key_ref(key_ref)
    pager: Any = container.list_blobs(
        name_starts_with=prefix, include=EVERY_COPY, results_per_page=top
    ).by_page(continuation_token=token)
    with translated("count blob versions"):
        async for page in pager:
            async for blob in page:
                _count(container, tally, wanted, blob)
            break  # one service page per call
    return tally.result(), pager.continuation_token or None


def _count(container: ContainerClient, tally: VersionTally, wanted: str, blob: Any) -> None:
    metadata = blob.metadata or {}
    entry = find_entry(metadata, ENCRYPTION_METADATA)
    wrap = parse_encryption_data(metadata[entry]) if entry else None
    if wrap is None or not wrap.key_id or not claims(wrap, wanted):
        return
    copy = immutable_copy(
        f"{container.container_name}/{blob.name}",
        wrap.key_id,
        snapshot=blob.snapshot,
        version_id=blob.version_id,
        is_current_version=blob.is_current_version,
        deleted=blob.deleted,
    )
    if copy is not None:
        tally.add_copy(copy)
        return
    previous = find_entry(metadata, PREVIOUS_WRAP_METADATA)
    tally.add(
        wrap.key_id,
        previous_key_id(metadata[previous]) if previous else None,
        find_entry(metadata, UNREADABLE_METADATA) is not None,
    )


async def forget_page(
    container: ContainerClient,
    prefix: str | None,
    gate: asyncio.Semaphore,
    key_id: str,
    *,
    token: str | None,
    top: int,
) -> tuple[int, str | None]:
    """Drop previous wraps under ``key_id`` (any spelling) from the live blobs of one listing
    page; returns how many and the next page's marker (by name: a drop moves no blob).

    Raises:
        InvalidInputError: ``key_id`` is not a versioned key id.
    """
    if split_key_id(key_id) is None:
        raise InvalidInputError(f"{key_id!r} is not a versioned key id")
    wanted = key_id.lower()
    pending = []
    pager: Any = container.list_blobs(
        name_starts_with=prefix, include=["metadata"], results_per_page=top
    ).by_page(continuation_token=token)
    with translated("find previous blob wraps"):
        async for page in pager:
            async for blob in page:
                metadata = dict(blob.metadata or {})
                entry = find_entry(metadata, PREVIOUS_WRAP_METADATA)
                if entry is None or find_entry(metadata, UNREADABLE_METADATA) is not None:
                    continue
                if (previous_key_id(metadata[entry]) or "").lower() == wanted:
                    del metadata[entry]
                    pending.append(_drop(container, gate, blob, metadata))
            break  # one service page per call
    return sum(await asyncio.gather(*pending)), pager.continuation_token or None


async def _drop(
    container: ContainerClient, gate: asyncio.Semaphore, blob: Any, metadata: dict[str, str]
) -> int:
    client = container.get_blob_client(blob.name)
    with translated("forget previous blob wrap"):
        async with gate:
            try:
                await client.set_blob_metadata(
                    metadata, etag=blob.etag, match_condition=MatchConditions.IfNotModified
                )
            except ResourceNotFoundError:
                return 0
            except HttpResponseError as error:
                if error.status_code != 412:
                    raise
                return 0  # changed meanwhile: not ours to clear now
    return 1
