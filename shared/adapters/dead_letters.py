"""Event Grid's dead-letter container (``KEYWARD_DEADLETTER_CONTAINER``): list, read, settle.

Bounded by construction: :meth:`BlobDeadLetters.page` lists ONE page of at most ``limit``
blob names (one List Blobs request) and reads at most that many blobs, each at most
:data:`MAX_DEAD_LETTER_BLOB_BYTES`; the continuation says where the next page starts. Blobs
already settled (under ``replayed/`` or ``rejected/``) count toward the limit but are not
read. Event Grid names its blobs after the subscription in upper case, so pending blobs sort
before the lower-case settled prefixes. A blob that cannot be parsed is returned with its
error (``shared.events.parse_dead_letter_blob``), never raised. A missing container reads
as empty. SDK errors leave through the one translator.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

from azure.core.exceptions import ResourceNotFoundError
from azure.storage.blob.aio import ContainerClient

from shared.adapters._azure_errors import translated
from shared.events import DeadLetterBlob, is_pending, parse_dead_letter_blob

#: A dead-letter blob larger than this is reported as malformed, not read (Event Grid's
#: batches are at most 1 MB of events).
MAX_DEAD_LETTER_BLOB_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True)
class DeadLetterPage:
    """Pending blobs of one listed page, and where the next page starts (``None``: the end)."""

    blobs: tuple[DeadLetterBlob, ...]
    continuation: str | None
    listed: int


class BlobDeadLetters:
    """The dead-letter container of keyward's event subscriptions."""

    def __init__(self, container: ContainerClient) -> None:
        self._container = container

    @property
    def name(self) -> str:
        return str(self._container.container_name)

    async def page(self, *, limit: int, continuation: str | None = None) -> DeadLetterPage:
        """At most ``limit`` listed names (one request) and their pending blobs' content.

        Raises:
            ServiceError: the container could not be listed or a blob read (translated).
        """
        names: list[tuple[str, str | None, int]] = []
        token: str | None = None
        listed = 0
        with translated(f"list dead letters in {self.name}"):
            try:
                pages = self._container.list_blobs(results_per_page=limit).by_page(
                    continuation_token=continuation
                )
                async for page in pages:
                    async for blob in page:
                        listed += 1
                        if is_pending(blob.name):
                            when = blob.last_modified
                            modified = when.isoformat() if when else None
                            names.append((blob.name, modified, int(blob.size or 0)))
                    token = getattr(pages, "continuation_token", None)
                    break
            except ResourceNotFoundError:
                return DeadLetterPage((), None, 0)
        blobs = [await self._read(name, modified, size) for name, modified, size in names]
        return DeadLetterPage(tuple(blobs), token or None, listed)

    async def _read(self, name: str, modified: str | None, size: int) -> DeadLetterBlob:
        if size > MAX_DEAD_LETTER_BLOB_BYTES:
            return DeadLetterBlob(name, error=f"larger than {MAX_DEAD_LETTER_BLOB_BYTES} bytes",
                                  last_modified=modified)  # fmt: skip
        with translated(f"read dead letter {name}"):
            try:
                content = await (await self._container.download_blob(name)).readall()
            except ResourceNotFoundError:
                gone = "gone (settled meanwhile)"
                return DeadLetterBlob(name, error=gone, last_modified=modified)
        return parse_dead_letter_blob(name, content, last_modified=modified)

    async def settle(self, name: str, prefix: str) -> str:
        """Move a blob under ``prefix`` (copy its content, then delete it); returns the new
        name. A blob already gone (settled by another replay) is not an error.

        Raises:
            ServiceError: the copy or the delete failed (the original is kept then).
        """
        target = prefix + name
        with translated(f"settle dead letter {name}"):
            try:
                content = await (await self._container.download_blob(name)).readall()
            except ResourceNotFoundError:
                return target
            await self._container.upload_blob(target, content, overwrite=True)
            with contextlib.suppress(ResourceNotFoundError):
                await self._container.delete_blob(name)
        return target

    async def close(self) -> None:
        await self._container.close()
