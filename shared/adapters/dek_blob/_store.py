"""Blob client-side encryption v2 DEK store: rewrap the content key in metadata only.

azure-storage-blob keeps each blob's wrapped content key in its ``encryptiondata`` metadata
entry, so a key rotation needs no content download: list blobs with metadata, re-wrap
``WrappedContentKey``, and write the metadata back with ``If-Match`` on the ETag. The write
sends the complete metadata (Set Blob Metadata replaces it all), built from what the scan
read: every other entry byte for byte, ``encryptiondata`` changed only in its key id,
wrapped key and algorithm. Protocol 1.0 and malformed values are reported, never written.

The metadata a scan read is kept (bounded, by ref and ETag) for the write that follows; a
write without it first reads the blob's properties; the ETag condition makes both safe. The
replaced wrap is kept, like a Table row's, until its version is retired: in
``keywardpreviouswrap``, written by the same conditional request (``_records``). Immutable
copies (blob versions, snapshots, soft-deleted blobs) are never scanned; ``version_counts``
counts and names them (``_upkeep`` says how, and what Azurite lacks).
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import AzureError, HttpResponseError, ResourceNotFoundError
from azure.storage.blob.aio import ContainerClient

from shared.adapters._azure_errors import item_fault, translate, translated
from shared.adapters._pipeline import NO_REDIRECTS
from shared.adapters.dek_blob._format import (
    ENCRYPTION_METADATA,
    PREVIOUS_WRAP_METADATA,
    UNREADABLE_METADATA,
    find_entry,
    parse_encryption_data,
    previous_key_id,
)
from shared.adapters.dek_blob._records import (
    blob_record,
    claims,
    rewrapped_metadata,
    same_etag,
)
from shared.adapters.dek_blob._upkeep import count_page, forget_page
from shared.errors import InvalidInputError
from shared.stores import (
    DEFAULT_COUNT_PAGE_SIZE,
    DEFAULT_PAGE_SIZE,
    CountPage,
    ForgetPage,
    all_version_counts,
    forget_all_previous,
)
from shared.stores._common import (
    MAX_LISTING_PAGES_PER_SCAN,
    aenumerate,
    check_page_size,
    clean_reason,
    decode_continuation,
    encode_continuation,
    fold_key_ref,
    split_key_id,
)
from shared.stores._model import rewrap_refusal
from shared.stores._protocol import DekRecord, Rewrap, ScanPage, VersionCount, WriteOutcome
from shared.stores._protocol import WriteResult as Result

#: Metadata sets remembered between a scan and its writes (about 1 KiB each).
MAX_REMEMBERED_METADATA = 10_000
#: Set Blob Metadata requests in flight at once from one store.
MAX_CONCURRENT_WRITES = 16
_KIND = "blob"
_IF_MATCH = MatchConditions.IfNotModified


class BlobDekStore:
    """A DekStore over the client-side encrypted blobs of one container."""

    def __init__(self, container: ContainerClient, *, name_prefix: str | None = None) -> None:
        """Args:
        container: an ``azure.storage.blob.aio`` container client.
        name_prefix: only blobs whose names start with this.
        """
        self._container = container
        self._prefix = name_prefix
        self._seen: OrderedDict[str, tuple[str, dict[str, str]]] = OrderedDict()
        self._gate = asyncio.Semaphore(MAX_CONCURRENT_WRITES)

    @classmethod
    def from_connection_string(
        cls, connection_string: str, container: str, *, name_prefix: str | None = None,
        **client_options: Any,
    ) -> BlobDekStore:  # fmt: skip
        """A store over ``container``; ``client_options`` go to the ``ContainerClient`` (the
        benchmark installs its traffic counter as ``raw_response_hook`` this way)."""
        client = ContainerClient.from_connection_string(
            connection_string, container, **{**NO_REDIRECTS, **client_options}
        )
        return cls(client, name_prefix=name_prefix)

    @property
    def name(self) -> str:
        return f"blob:{self._container.container_name}"

    def _remember(self, ref: str, etag: str, metadata: dict[str, str]) -> None:
        self._seen[ref] = (etag, metadata)
        self._seen.move_to_end(ref)
        while len(self._seen) > MAX_REMEMBERED_METADATA:
            self._seen.popitem(last=False)

    async def scan(
        self,
        key_ref: str,
        *,
        exclude_version: str | None,
        continuation: str | None = None,
        page_size: int = DEFAULT_PAGE_SIZE,
    ) -> ScanPage:
        token = decode_continuation(_KIND, continuation) if continuation else None
        wanted, excluded = fold_key_ref(key_ref), (exclude_version or "").lower()
        pager = self._container.list_blobs(
            name_starts_with=self._prefix,
            include=["metadata"],
            results_per_page=check_page_size(page_size),
        ).by_page(continuation_token=token)
        records: list[DekRecord] = []
        with translated("list blobs"):
            # Filtering happens here, after listing; read on past pages with nothing of ours,
            # but not forever: an empty page with a continuation still lets a job checkpoint.
            async for pages_read, page in aenumerate(pager):
                async for blob in page:
                    record = self._consider(blob, wanted, excluded)
                    if record is not None:
                        records.append(record)
                if records or pages_read + 1 >= MAX_LISTING_PAGES_PER_SCAN:
                    break
        next_token = pager.continuation_token  # type: ignore[attr-defined]
        return ScanPage(records, encode_continuation(_KIND, next_token) if next_token else None)

    def _consider(self, blob: Any, wanted: str, excluded: str) -> DekRecord | None:
        metadata = dict(blob.metadata or {})
        entry = find_entry(metadata, ENCRYPTION_METADATA)
        if entry is None:
            return None  # not client-side encrypted: not a DEK
        wrap = parse_encryption_data(metadata[entry])
        if not claims(wrap, wanted):
            return None
        split = split_key_id(wrap.key_id)
        if wrap.problem is None and split is not None and split[1] == excluded:
            return None
        ref = f"{self._container.container_name}/{blob.name}"
        self._remember(ref, blob.etag, metadata)
        previous = find_entry(metadata, PREVIOUS_WRAP_METADATA)
        previous_id = previous_key_id(metadata[previous]) if previous else None
        return blob_record(ref, self._container.container_name, blob.etag, wrap, previous_id)

    async def _metadata_at(self, record: DekRecord) -> dict[str, str] | Result:
        """The metadata as read at ``record.etag``, or the outcome if the blob moved on."""
        seen = self._seen.pop(record.ref, None)
        if seen is not None and same_etag(seen[0], record.etag):
            return seen[1]
        blob = self._blob(record)
        try:
            properties = await blob.get_blob_properties()
        except ResourceNotFoundError:
            return Result(record.ref, WriteOutcome.NOT_FOUND, "no such blob")
        except AzureError as error:
            raise translate(error, "read blob properties") from None
        if not same_etag(properties.etag, record.etag):
            return Result(record.ref, WriteOutcome.CONFLICT, "etag no longer matches")
        return dict(properties.metadata or {})

    def _blob(self, record: DekRecord) -> Any:
        name = record.ref.removeprefix(f"{self._container.container_name}/")
        return self._container.get_blob_client(name)

    async def replace_batch(self, rewraps: Sequence[Rewrap]) -> Sequence[Result]:
        return list(await asyncio.gather(*(self._replace_one(r) for r in rewraps)))

    async def _replace_one(self, rewrap: Rewrap) -> Result:
        record = rewrap.record
        refusal = rewrap_refusal(rewrap)
        if refusal is not None:
            return Result(record.ref, WriteOutcome.FAILED, refusal)
        async with self._gate:
            metadata = await self._metadata_at(record)
            if isinstance(metadata, Result):
                return await self._settle(metadata, rewrap)
            updated = rewrapped_metadata(metadata, rewrap)
            if isinstance(updated, str):
                return Result(record.ref, WriteOutcome.FAILED, updated)
            outcome = await self._write(record, updated, "rewrap blob")
            return await self._settle(outcome, rewrap)

    async def _settle(self, outcome: Result, rewrap: Rewrap) -> Result:
        """A conflict is a success when the blob already holds exactly this wrap (a replayed
        batch whose first attempt landed, or whose answer was lost)."""
        if outcome.outcome is not WriteOutcome.CONFLICT:
            return outcome
        with translated("read blob after conflict"):
            try:
                properties = await self._blob(rewrap.record).get_blob_properties()
            except ResourceNotFoundError:
                return Result(rewrap.record.ref, WriteOutcome.NOT_FOUND, "no such blob")
        metadata = dict(properties.metadata or {})
        entry = find_entry(metadata, ENCRYPTION_METADATA)
        wrap = parse_encryption_data(metadata[entry]) if entry else None
        if wrap and (wrap.key_id.lower(), wrap.wrapped) == (rewrap.key_id.lower(), rewrap.wrapped):
            return Result(
                rewrap.record.ref, WriteOutcome.WRITTEN, "already written", properties.etag
            )
        return outcome

    async def _write(self, record: DekRecord, metadata: Mapping[str, str], what: str) -> Result:
        try:
            answer = await self._blob(record).set_blob_metadata(
                dict(metadata), etag=record.etag, match_condition=_IF_MATCH
            )
        except ResourceNotFoundError:
            return Result(record.ref, WriteOutcome.NOT_FOUND, "no such blob")
        except HttpResponseError as error:
            if error.status_code == 412:
                return Result(record.ref, WriteOutcome.CONFLICT, "etag no longer matches")
            fault = item_fault(error, what)
            if fault is None:
                raise translate(error, what) from None
            return Result(record.ref, WriteOutcome.FAILED, str(fault))
        except AzureError as error:
            raise translate(error, what) from None
        return Result(record.ref, WriteOutcome.WRITTEN, new_etag=answer.get("etag"))

    async def mark_unreadable(self, record: DekRecord, reason: str) -> Result:
        async with self._gate:
            metadata = await self._metadata_at(record)
            if isinstance(metadata, Result):
                return metadata
            updated = {k: v for k, v in metadata.items() if k.lower() != UNREADABLE_METADATA}
            updated[UNREADABLE_METADATA] = clean_reason(reason)
            return await self._write(record, updated, "mark blob unreadable")

    async def count_versions(
        self,
        key_ref: str,
        *,
        continuation: str | None = None,
        page_size: int = DEFAULT_COUNT_PAGE_SIZE,
    ) -> CountPage:
        """One listing page of every copy (one request; see ``_upkeep``)."""
        counts, token = await count_page(
            self._container, self._prefix, key_ref, _marker(continuation),
            check_page_size(page_size),
        )  # fmt: skip
        return CountPage(counts, encode_continuation(_KIND, token) if token else None)

    async def version_counts(self, key_ref: str) -> Sequence[VersionCount]:
        return await all_version_counts(self, key_ref)

    async def forget_previous(self, previous_key_id: str) -> int:
        """Drop the previous wraps kept under ``previous_key_id`` (that version is being
        retired); returns how many. Blobs marked unreadable keep theirs.

        Raises:
            InvalidInputError: ``previous_key_id`` is not a versioned key id.
        """
        return await forget_all_previous(self, previous_key_id)

    async def forget_previous_page(
        self,
        previous_key_id: str,
        *,
        continuation: str | None = None,
        page_size: int = DEFAULT_COUNT_PAGE_SIZE,
    ) -> ForgetPage:
        dropped, token = await forget_page(
            self._container, self._prefix, self._gate, previous_key_id,
            token=_marker(continuation), top=check_page_size(page_size),
        )  # fmt: skip
        return ForgetPage(dropped, encode_continuation(_KIND, token) if token else None)

    async def close(self) -> None:
        self._seen.clear()
        await self._container.close()

    def __repr__(self) -> str:
        return f"BlobDekStore({self._container.container_name!r}, prefix={self._prefix!r})"


def _marker(continuation: str | None) -> str | None:
    """The listing marker inside a continuation this store issued.

    Raises:
        InvalidInputError: not a continuation a Blob store issued.
    """
    token = decode_continuation(_KIND, continuation) if continuation else None
    if token is not None and not isinstance(token, str):
        raise InvalidInputError("continuation is not one keyward issued")
    return token
