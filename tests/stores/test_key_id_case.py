"""Key Vault names are case-insensitive: every store finds a key's DEKs under any spelling.

DEKs written under ``https://KWTEST.VAULT.AZURE.NET/keys/DEK-KEK/...`` or ``.../Dek-Kek/...``
belong to ``https://kwtest.vault.azure.net/keys/dek-kek``: the scan returns them, a rewrap
moves them onto the canonical spelling, the version counts merge them and retiring the
old version drops their previous wraps. Rows are written both through the store (as an
application using keyward writes them) and raw (as a legacy or foreign writer left them,
``KeyRef`` with an upper-case host). A key whose name sorts inside the Table store's
spelling range (``Dek-Kek-2``) must stay out.
"""

from __future__ import annotations

import base64
from typing import Any

import pytest

from devtools.seed import new_dek, seed_deks
from shared.crypto import LocalRsaWrapper
from shared.stores import DekRecord, Rewrap, WriteOutcome
from tests.stores.conftest import KEY_REF, V1, V2, Harness, Keys
from tests.stores.test_conformance import scan_all

UPPER_REF = "https://KWTEST.VAULT.AZURE.NET/keys/DEK-KEK"
MIXED_REF = "https://kwtest.vault.azure.net/keys/Dek-Kek"
INSIDE_RANGE_REF = "https://kwtest.vault.azure.net/keys/Dek-Kek-2"


def respelled(wrapper: LocalRsaWrapper, key_ref: str, version: str = V1) -> LocalRsaWrapper:
    """The same key pair under another spelling of its key id."""
    return LocalRsaWrapper(f"{key_ref}/{version}", private_key=wrapper._private_key)


def rewrap_from(record: DekRecord, old: LocalRsaWrapper, new: LocalRsaWrapper) -> Rewrap:
    with old.unwrap(record.wrapped) as dek:
        assert dek.kcv == record.kcv
        return Rewrap(record, new.key_id, new.algorithm, new.wrap(dek), dek.kcv)


async def seed_mixed(harness: Harness, store: Any, keys: Keys) -> set[str]:
    """Nine DEKs of the key under three spellings, plus DEKs of a key inside the range."""
    await seed_deks(store, keys.v1, 3, partitions=1, prefix="canon")
    await seed_deks(store, respelled(keys.v1, UPPER_REF), 2, partitions=1, prefix="upper")
    await seed_deks(store, respelled(keys.v1, MIXED_REF), 2, partitions=1, prefix="mixed")
    await seed_deks(store, respelled(keys.v1, INSIDE_RANGE_REF), 2, partitions=1, prefix="near")
    legacy = set()
    for index in range(2):  # KeyRef exactly as an old or foreign writer spelled it
        dek = new_dek(respelled(keys.v1, UPPER_REF), "p0", f"legacy{index}")
        fields = {"key_id": dek.key_id, "algorithm": dek.algorithm.value, "kcv": dek.kcv,
                  "wrapped": base64.b64encode(dek.wrapped).decode(), "version": V1}  # fmt: skip
        await harness.plant(store, dek.ref, UPPER_REF, **fields)
        legacy.add(dek.ref)
    found = {r.ref for r in await scan_all(store, exclude=V2)}
    assert legacy <= found
    return found


def test_scan_finds_every_spelling_and_nothing_else(harness: Harness, keys: Keys) -> None:
    async def body(store: Any) -> None:
        found = await seed_mixed(harness, store, keys)
        assert len(found) == 9
        assert not any("near" in ref for ref in found)
        for spelling in (UPPER_REF, MIXED_REF, KEY_REF.upper().replace("HTTPS", "https")):
            assert {r.ref for r in await scan_all(store, spelling, exclude=V2)} == found
        assert {r.ref for r in await scan_all(store, exclude=V1)} == set()
        near = await scan_all(store, INSIDE_RANGE_REF.lower(), exclude=V2)
        assert len(near) == 2
        assert all(r.problem is None for r in await scan_all(store, exclude=V2))

    harness.run(body)


def test_counts_merge_spellings_and_rewrap_moves_them_to_the_canonical_id(
    harness: Harness, keys: Keys
) -> None:
    async def body(store: Any) -> None:
        await seed_mixed(harness, store, keys)
        counts = {c.key_id: c for c in await store.version_counts(UPPER_REF.lower())}
        assert set(counts) == {keys.v1.key_id}
        assert counts[keys.v1.key_id].current == 9

        records = await scan_all(store, MIXED_REF, exclude=V2)
        results = await store.replace_batch([rewrap_from(r, keys.v1, keys.v2) for r in records])
        assert {r.outcome for r in results} == {WriteOutcome.WRITTEN}
        assert await scan_all(store, exclude=V2) == []
        for record in records:
            details = await store.get(record.ref)
            assert details.record.key_id == keys.v2.key_id  # the canonical spelling
            assert details.record.problem is None
            assert details.record.previous_key_id == record.key_id  # as it was written

        counts = {c.key_id: c for c in await store.version_counts(MIXED_REF)}
        # Counted under the caller's spelling of the key, whole across spellings.
        v1, v2 = counts[f"{MIXED_REF}/{V1}"], counts[f"{MIXED_REF}/{V2}"]
        assert (v1.current, v1.previous, v2.current, v2.previous) == (0, 9, 9, 0)

        assert await store.forget_previous(f"{UPPER_REF}/{V1}") == 9
        counts = {c.key_id: c for c in await store.version_counts(KEY_REF)}
        assert set(counts) == {keys.v2.key_id}
        near = {c.key_id: c.current for c in await store.version_counts(INSIDE_RANGE_REF)}
        assert near == {f"{INSIDE_RANGE_REF}/{V1}": 2}  # the other key is untouched

    harness.run(body)


@pytest.mark.azurite
def test_blob_store_finds_every_spelling(azurite: Any, keys: Keys) -> None:
    """Blob metadata names the key as the writer spelled it; the store compares folded."""
    import asyncio

    from shared.adapters.dek_blob import BlobDekStore
    from tests.stores.blob_support import download_with, new_container, upload_sdk

    container = new_container(azurite.connection_string)
    writers = {"canon": keys.v1, "upper": respelled(keys.v1, UPPER_REF),
               "mixed": respelled(keys.v1, MIXED_REF),
               "near": respelled(keys.v1, INSIDE_RANGE_REF)}  # fmt: skip
    for name, wrapper in writers.items():
        upload_sdk(container, name, name.encode() * 100, wrapper)

    async def body() -> None:
        store = BlobDekStore.from_connection_string(
            azurite.connection_string, container.container_name
        )
        try:
            records = await scan_all(store, UPPER_REF, exclude=V2)
            assert sorted(r.ref.split("/", 1)[1] for r in records) == ["canon", "mixed", "upper"]
            [count] = await store.version_counts(MIXED_REF)
            assert (count.key_id, count.current) == (f"{MIXED_REF}/{V1}", 3)
            rewraps = [rewrap_blob(r, keys) for r in records]
            assert {w.outcome for w in await store.replace_batch(rewraps)} == {WriteOutcome.WRITTEN}
            assert await scan_all(store, exclude=V2) == []
            counts = {
                c.key_id: (c.current, c.previous) for c in await store.version_counts(KEY_REF)
            }
            assert counts == {keys.v1.key_id: (0, 3), keys.v2.key_id: (3, 0)}
        finally:
            await store.close()

    asyncio.run(body())
    # Each blob keeps its writer's spelling of the key, under the new version: the writer's
    # own KEK (same spelling) opens it, since azure-storage-blob compares kids exactly.
    for name, ref in (("canon", KEY_REF), ("upper", UPPER_REF), ("mixed", MIXED_REF)):
        assert download_with(container, name, respelled(keys.v2, ref, V2)) == name.encode() * 100
    # azure-storage-blob compares the KEK's kid with the stored KeyId exactly (case and all).
    assert download_with(container, "near", writers["near"]) == b"near" * 100


def rewrap_blob(record: DekRecord, keys: Keys) -> Rewrap:
    with keys.v1.unwrap(record.wrapped) as material:
        assert material.reveal().startswith(record.material_prefix)
        wrapped = keys.v2.wrap(material)
        return Rewrap(record, keys.v2.key_id, keys.v2.algorithm, wrapped, material.kcv)
