"""Blob records keyward must not touch: protocol 1.0 and corrupted ``encryptiondata``.

Plus the two paths that run without the scan's remembered metadata (a resumed worker) and
the wire cost of a rewrap, which must not depend on the blob's size.
"""

from __future__ import annotations

import base64
import json
import os
from typing import Any

import pytest

from devtools.azurite import AzuriteInfo
from devtools.traffic import TrafficCounter
from shared.adapters.dek_blob import BlobDekStore
from shared.stores import Rewrap, WriteOutcome
from shared.stores._common import MAX_LISTING_PAGES_PER_SCAN
from tests.stores.blob_support import (
    download_with,
    metadata_of,
    upload_raw,
    upload_sdk,
)
from tests.stores.conftest import KEY_REF, V2, Keys
from tests.stores.test_blob_store import rewrap_to, run, scan_all

pytestmark = pytest.mark.azurite

#: The issue's target for a rewrap's traffic per blob: metadata only.
MAX_REWRAP_BYTES_PER_BLOB = 8 * 1024


def encryption_data(keys: Keys, **changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "WrappedContentKey": {
            "KeyId": keys.v1.key_id,
            "EncryptedKey": base64.b64encode(b"\x01" * 256).decode(),
            "Algorithm": "RSA-OAEP-256",
        },
        "EncryptionAgent": {"Protocol": "2.0", "EncryptionAlgorithm": "AES_GCM_256"},
        "EncryptedRegionInfo": {"DataLength": 4194304, "NonceLength": 12},
    }
    for path, value in changes.items():
        section, field = path.split("__")
        data[section][field] = value
    return data


def corrupted(keys: Keys) -> dict[str, tuple[str, str]]:
    """blob name -> (encryptiondata text, a word the reported problem must contain)."""
    good = encryption_data
    return {
        "bad-json": ('{"WrappedContentKey": {', "JSON"),
        "bad-base64": (json.dumps(good(keys, WrappedContentKey__EncryptedKey="@@@")), "base64"),
        "unknown-wrap-algorithm": (
            json.dumps(good(keys, WrappedContentKey__Algorithm="ROT13")), "algorithm"),
        "unknown-content-algorithm": (
            json.dumps(good(keys, EncryptionAgent__EncryptionAlgorithm="AES_CBC_256")), "AES_GCM"),
        "unknown-protocol": (json.dumps(good(keys, EncryptionAgent__Protocol="9.9")), "protocol"),
        "unversioned-key-id": (
            json.dumps(good(keys, WrappedContentKey__KeyId=KEY_REF)), "versioned"),
        "no-region-info": (json.dumps({k: v for k, v in good(keys).items()
                                       if k != "EncryptedRegionInfo"}), "EncryptedRegionInfo"),
    }  # fmt: skip


def test_protocol_1_and_corrupted_metadata_reported_untouched(
    azurite: AzuriteInfo, keys: Keys
) -> None:
    async def body(store: BlobDekStore, container: Any) -> None:
        upload_sdk(container, "v1-protocol", b"legacy data", keys.v1, version="1.0")
        for name, (text, _) in corrupted(keys).items():
            upload_raw(container, name, text)
        foreign = encryption_data(keys, WrappedContentKey__KeyId=keys.other.key_id)
        upload_raw(container, "someone-elses", json.dumps(foreign))
        upload_sdk(container, "sound", b"fine", keys.v1)
        before = {b.name: (b.etag, metadata_of(container, b.name)) for b in container.list_blobs()}

        records = {r.ref.split("/", 1)[1]: r for r in await scan_all(store, page_size=3)}
        assert "someone-elses" not in records
        assert records["sound"].problem is None
        assert records["v1-protocol"].problem == "protocol 1.0 is not supported; re-encrypt to 2.0"
        for name, (_, word) in corrupted(keys).items():
            assert word in (records[name].problem or ""), (name, records[name].problem)
        bad = [r for r in records.values() if r.problem]
        assert all(r.wrapped == b"" and r.algorithm is None for r in bad)

        template = rewrap_to(records["sound"], keys, keys.v2)
        attempts = [Rewrap(r, keys.v2.key_id, keys.v2.algorithm, template.wrapped, "") for r in bad]
        results = await store.replace_batch(attempts)
        assert {r.outcome for r in results} == {WriteOutcome.FAILED}
        after = {b.name: (b.etag, metadata_of(container, b.name)) for b in container.list_blobs()}
        assert after == before
        assert download_with(container, "v1-protocol", keys.v1) == b"legacy data"

    run(azurite, body)


def test_resumed_scan_and_write_without_remembered_metadata(
    azurite: AzuriteInfo, keys: Keys
) -> None:
    async def body(store: BlobDekStore, container: Any) -> None:
        contents = {f"blob-{i:02d}": os.urandom(100 + i) for i in range(7)}
        for name, content in contents.items():
            upload_sdk(container, name, content, keys.v1)
        first = await store.scan(KEY_REF, exclude_version=V2, page_size=3)
        resumed = BlobDekStore.from_connection_string(
            azurite.connection_string, container.container_name
        )
        try:
            rest = await scan_all_from(resumed, first.continuation)
            # The first page's writes go through the resumed store, which never saw them.
            results = await resumed.replace_batch(
                [rewrap_to(r, keys, keys.v2) for r in [*first.records, *rest]]
            )
        finally:
            await resumed.close()
        assert len(results) == 7
        assert {r.outcome for r in results} == {WriteOutcome.WRITTEN}
        for name, content in contents.items():
            assert download_with(container, name, keys.v2) == content

    async def scan_all_from(store: BlobDekStore, continuation: str | None) -> list[Any]:
        found = []
        while continuation is not None:
            page = await store.scan(KEY_REF, exclude_version=V2, continuation=continuation,
                                    page_size=3)  # fmt: skip
            found.extend(page.records)
            continuation = page.continuation
        return found

    run(azurite, body)


def test_rewrap_of_a_64_mib_blob_moves_metadata_only(azurite: AzuriteInfo, keys: Keys) -> None:
    content = os.urandom(64 * 1024 * 1024)
    counter = TrafficCounter()

    async def body(store: BlobDekStore, container: Any) -> None:
        upload_sdk(container, "big", content, keys.v1)
        counter.reset()
        records = await scan_all(store)
        results = await store.replace_batch([rewrap_to(r, keys, keys.v2) for r in records])
        assert [r.outcome for r in results] == [WriteOutcome.WRITTEN]
        traffic = counter.snapshot()
        assert traffic.requests == 2  # one list page, one Set Blob Metadata
        assert 0 < traffic.total < MAX_REWRAP_BYTES_PER_BLOB, traffic
        assert download_with(container, "big", keys.v2) == content

    run(azurite, body, raw_response_hook=counter)


def test_bad_continuation_refused(azurite: AzuriteInfo) -> None:
    from shared.errors import InvalidInputError

    async def body(store: BlobDekStore, container: Any) -> None:
        with pytest.raises(InvalidInputError):
            await store.scan(KEY_REF, exclude_version=V2, continuation="garbage")

    run(azurite, body)


def test_sparse_listing_returns_empty_pages_that_still_checkpoint(
    azurite: AzuriteInfo, keys: Keys
) -> None:
    async def body(store: BlobDekStore, container: Any) -> None:
        for index in range(MAX_LISTING_PAGES_PER_SCAN + 2):
            container.get_blob_client(f"a-{index:03d}").upload_blob(b"not encrypted")
        upload_sdk(container, "z-ours", b"ours", keys.v1)
        first = await store.scan(KEY_REF, exclude_version=V2, page_size=1)
        assert first.records == []
        assert first.continuation is not None
        assert [r.ref for r in await scan_all(store, page_size=1)] == [
            f"{container.container_name}/z-ours"
        ]

    run(azurite, body)
