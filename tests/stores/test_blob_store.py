"""The blob client-side encryption store, judged by azure-storage-blob itself on Azurite.

The rewrap is done by hand here, as the engine would: unwrap with the old version's
``LocalRsaWrapper``, check the protocol prefix, wrap with the new version, ``replace_batch``.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError
from azure.storage.blob.aio import ContainerClient

from devtools.azurite import AzuriteInfo
from devtools.seed import seed_blobs
from shared.adapters.dek_blob import BlobDekStore
from shared.stores import DekRecord, DekStore, Rewrap, WriteOutcome, merge_counts
from tests.stores.blob_support import (
    EXTRA_METADATA,
    download_resolved,
    download_with,
    metadata_of,
    new_container,
    upload_sdk,
    upload_v21,
)
from tests.stores.conftest import KEY_REF, V2, Keys

pytestmark = pytest.mark.azurite

Body = Callable[[BlobDekStore, Any], Awaitable[None]]


def run(azurite: AzuriteInfo, body: Body, **client_options: Any) -> None:
    """Run ``body`` with a store over a new container (``client_options`` go to its client)."""
    container = new_container(azurite.connection_string)

    async def main() -> None:
        store = BlobDekStore.from_connection_string(
            azurite.connection_string, container.container_name, **client_options
        )
        try:
            await body(store, container)
        finally:
            await store.close()

    asyncio.run(main())


async def scan_all(
    store: BlobDekStore, exclude: str | None = V2, page_size: int = 100
) -> list[DekRecord]:
    records: list[DekRecord] = []
    continuation = None
    while True:
        page = await store.scan(KEY_REF, exclude_version=exclude, continuation=continuation,
                                page_size=page_size)  # fmt: skip
        records.extend(page.records)
        if page.continuation is None:
            return records
        continuation = page.continuation


def rewrap_to(record: DekRecord, keys: Keys, target: Any) -> Rewrap:
    with keys.by_id(record.key_id).unwrap(record.wrapped) as material:
        assert material.reveal().startswith(record.material_prefix)
        return Rewrap(record, target.key_id, target.algorithm, target.wrap(material), material.kcv)


def payloads() -> dict[str, bytes]:
    return {
        "v20/empty": b"",
        "v20/one-byte": b"\x00",
        "v20/two-regions": os.urandom(4 * 1024 * 1024 + 17),
        "v21/small": os.urandom(3000),
        "v21/exact-region": os.urandom(2048),
    }


def test_sdk_decrypts_every_blob_byte_identical_after_rewrap(
    azurite: AzuriteInfo, keys: Keys
) -> None:
    data = payloads()

    async def body(store: BlobDekStore, container: Any) -> None:
        assert isinstance(store, DekStore)
        for name, content in data.items():
            if name.startswith("v20/"):
                upload_sdk(container, name, content, keys.v1)
            else:
                upload_v21(container, name, content, keys.v1)
            assert download_with(container, name, keys.v1) == content  # sound before
        before = {name: metadata_of(container, name) for name in data}
        records = await scan_all(store, page_size=2)
        assert sorted(r.ref.split("/", 1)[1] for r in records) == sorted(data)
        prefixes = {r.ref.split("/", 1)[1]: r.material_prefix for r in records}
        assert prefixes["v20/empty"] == b"2.0\0\0\0\0\0"
        assert prefixes["v21/small"] == b"2.1\0\0\0\0\0"
        assert all(r.kcv is None and r.problem is None for r in records)

        results = await store.replace_batch([rewrap_to(r, keys, keys.v2) for r in records])
        assert {r.outcome for r in results} == {WriteOutcome.WRITTEN}

        for name, content in data.items():
            assert download_with(container, name, keys.v2) == content
            assert download_resolved(container, name, keys.v1, keys.v2) == content
            if content:  # (the SDK never unwraps for an empty blob: nothing to decrypt)
                with pytest.raises(HttpResponseError, match="Decryption failed"):
                    download_with(container, name, keys.v1)
            assert_only_wrap_changed(before[name], metadata_of(container, name), keys)
        assert await scan_all(store) == []

    run(azurite, body)


def assert_only_wrap_changed(before: dict[str, str], after: dict[str, str], keys: Keys) -> None:
    """Only the wrap changed, and the replaced wrap is kept, exactly, as the previous wrap."""
    after = dict(after)
    previous = json.loads(after.pop("keywardpreviouswrap"))
    assert previous == json.loads(before["encryptiondata"])["WrappedContentKey"]
    assert {k: v for k, v in after.items() if k != "encryptiondata"} == {
        k: v for k, v in before.items() if k != "encryptiondata"
    }
    for name, value in EXTRA_METADATA.items():
        assert after[name] == value
    old, new = json.loads(before["encryptiondata"]), json.loads(after["encryptiondata"])
    assert new["WrappedContentKey"]["KeyId"] == keys.v2.key_id
    assert new["WrappedContentKey"]["EncryptedKey"] != old["WrappedContentKey"]["EncryptedKey"]
    for entry in (old, new):
        entry["WrappedContentKey"].pop("KeyId")
        entry["WrappedContentKey"].pop("EncryptedKey")
    assert new == old
    assert list(json.loads(after["encryptiondata"])) == list(json.loads(before["encryptiondata"]))
    # The writer's JSON spelling is kept: compact stays compact, spaced stays spaced.
    assert (", " in before["encryptiondata"]) == (", " in after["encryptiondata"])


def test_concurrent_metadata_change_is_a_conflict(azurite: AzuriteInfo, keys: Keys) -> None:
    async def body(store: BlobDekStore, container: Any) -> None:
        upload_sdk(container, "a", b"alpha", keys.v1)
        upload_sdk(container, "b", b"bravo", keys.v1)
        records = await scan_all(store)
        blob = container.get_blob_client("a")
        changed = {**metadata_of(container, "a"), "changedby": "someone-else"}
        blob.set_blob_metadata(changed)
        results = await store.replace_batch([rewrap_to(r, keys, keys.v2) for r in records])
        outcomes = {r.ref.split("/", 1)[1]: r.outcome for r in results}
        assert outcomes == {"a": WriteOutcome.CONFLICT, "b": WriteOutcome.WRITTEN}
        assert metadata_of(container, "a") == changed  # nothing overwritten
        assert download_with(container, "a", keys.v1) == b"alpha"
        assert download_with(container, "b", keys.v2) == b"bravo"

    run(azurite, body)


def test_replayed_rewrap_reports_written(azurite: AzuriteInfo, keys: Keys) -> None:
    async def body(store: BlobDekStore, container: Any) -> None:
        upload_sdk(container, "a", b"alpha", keys.v1)
        rewraps = [rewrap_to(r, keys, keys.v2) for r in await scan_all(store)]
        first = await store.replace_batch(rewraps)
        again = await store.replace_batch(rewraps)
        assert [r.outcome for r in first + again] == [WriteOutcome.WRITTEN] * 2
        assert again[0].detail == "already written"

    run(azurite, body)


def test_mark_unreadable_keeps_encryptiondata(azurite: AzuriteInfo, keys: Keys) -> None:
    async def body(store: BlobDekStore, container: Any) -> None:
        upload_sdk(container, "a", b"alpha", keys.v1)
        before = metadata_of(container, "a")
        [record] = await scan_all(store)
        result = await store.mark_unreadable(record, "unwrap refused: version disabled\n")
        assert result.outcome is WriteOutcome.WRITTEN
        after = metadata_of(container, "a")
        assert after.pop("keywardunreadable") == "unwrap refused: version disabled?"
        assert after == before
        assert (await store.mark_unreadable(record, "stale")).outcome is WriteOutcome.CONFLICT
        [count] = await store.version_counts(KEY_REF)
        assert (count.key_id, count.current, count.unreadable) == (keys.v1.key_id, 1, 1)
        # A later successful rewrap clears keyward's own marker, and nothing else.
        [fresh] = await scan_all(store)
        [written] = await store.replace_batch([rewrap_to(fresh, keys, keys.v2)])
        assert written.outcome is WriteOutcome.WRITTEN
        assert "keywardunreadable" not in metadata_of(container, "a")

    run(azurite, body)


def test_version_counts_and_other_keys(azurite: AzuriteInfo, keys: Keys) -> None:
    async def body(store: BlobDekStore, container: Any) -> None:
        for index in range(5):
            upload_sdk(container, f"v1-{index}", b"x", keys.v1)
        for index in range(3):
            upload_sdk(container, f"v2-{index}", b"y", keys.v2)
        upload_sdk(container, "other", b"z", keys.other)
        container.get_blob_client("plain").upload_blob(b"not encrypted")
        assert len(await scan_all(store)) == 5
        assert len(await scan_all(store, exclude=None, page_size=1)) == 8
        counts = {c.key_id: (c.current, c.previous) for c in await store.version_counts(KEY_REF)}
        assert counts == {keys.v1.key_id: (5, 0), keys.v2.key_id: (3, 0)}
        first = await store.count_versions(KEY_REF, page_size=2)  # one listing page
        assert list(first.counts) == []  # "other" and "plain": nothing of ours, still moves on
        assert first.continuation is not None
        merged, continuation, pages = merge_counts(first.counts), first.continuation, 1
        while continuation is not None:
            page = await store.count_versions(KEY_REF, continuation=continuation, page_size=2)
            merged, continuation = merge_counts(merged, page.counts), page.continuation
            pages += 1
        assert pages == 5  # ten blobs, two a page
        assert {c.key_id: (c.current, c.previous) for c in merged} == counts

    run(azurite, body)


def test_seeded_blobs_are_found_and_decrypt(azurite: AzuriteInfo, keys: Keys) -> None:
    async def body(store: BlobDekStore, container: Any) -> None:
        aio = ContainerClient.from_connection_string(
            azurite.connection_string, container.container_name
        )
        async with aio:
            await seed_blobs(aio, keys.v1, 12, content=lambda i: b"blob %d" % i)
        records = await scan_all(store, page_size=5)
        assert len(records) == 12
        assert download_with(container, "blob-000000007", keys.v1) == b"blob 7"

    run(azurite, body)
