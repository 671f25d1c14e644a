"""Corrupted or foreign records are reported per item with a reason and never modified."""

from __future__ import annotations

import base64
from typing import Any

from devtools.seed import seed_deks
from shared.stores import Rewrap, WriteOutcome
from tests.stores.conftest import KEY_REF, V1, V2, Harness, Keys
from tests.stores.test_conformance import scan_all

GOOD_KCV = "0123456789abcdef"


def corrupted(keys: Keys) -> dict[str, dict[str, str]]:
    wrapped = base64.b64encode(b"\x01" * 256).decode()
    good = {"key_id": keys.v1.key_id, "algorithm": "RSA-OAEP-256", "wrapped": wrapped,
            "kcv": GOOD_KCV, "version": V1}  # fmt: skip
    return {
        "p0/bad-base64": {**good, "wrapped": "not base64!!"},
        "p0/unknown-algorithm": {**good, "algorithm": "ROT13"},
        "p0/foreign-key-id": {**good, "key_id": f"https://evil.vault.azure.net/keys/dek-kek/{V1}"},
        "p0/unversioned-key-id": {**good, "key_id": KEY_REF},
        "p0/bad-kcv": {**good, "kcv": "XYZ"},
        "p0/empty-wrap": {**good, "wrapped": ""},
    }


EXPECTED_PROBLEMS = {
    "p0/bad-base64": "base64",
    "p0/unknown-algorithm": "algorithm",
    "p0/foreign-key-id": "foreign",
    "p0/unversioned-key-id": "versioned",
    "p0/bad-kcv": "kcv",
    "p0/empty-wrap": "empty",
}


def test_corrupted_records_reported_and_never_modified(harness: Harness, keys: Keys) -> None:
    async def body(store: Any) -> None:
        await seed_deks(store, keys.v1, 3, partitions=1, prefix="ok")
        for ref, fields in corrupted(keys).items():
            await harness.plant(store, ref, KEY_REF, **fields)
        records = await scan_all(store, exclude=V2, page_size=4)
        problems = {r.ref: r.problem for r in records if r.problem}
        assert set(problems) == set(EXPECTED_PROBLEMS)
        for ref, word in EXPECTED_PROBLEMS.items():
            assert word in (problems[ref] or ""), (ref, problems[ref])
        sound = [r for r in records if r.problem is None]
        assert len(sound) == 3
        assert all(r.wrapped == b"" for r in records if r.problem)
        assert "not base64!!" not in repr(records)

        # Even handed a "rewrap", a store never rewrites a record it could not parse.
        bad = [r for r in records if r.problem]
        template = keys.v2.wrap(keys.v1.unwrap(sound[0].wrapped))
        attempts = [Rewrap(r, keys.v2.key_id, keys.v2.algorithm, template, GOOD_KCV) for r in bad]
        results = await store.replace_batch(attempts)
        assert {r.outcome for r in results} == {WriteOutcome.FAILED}
        for record in bad:
            details = await store.get(record.ref)
            assert details.record.etag == record.etag
            assert details.record.problem == record.problem

    harness.run(body)


def test_corrupted_records_appear_in_version_counts(harness: Harness, keys: Keys) -> None:
    async def body(store: Any) -> None:
        await seed_deks(store, keys.v1, 2, partitions=1)
        fields = corrupted(keys)["p0/bad-base64"]
        await harness.plant(store, "p0/bad-base64", KEY_REF, **fields)
        counts = {c.key_id: c.current for c in await store.version_counts(KEY_REF)}
        assert counts == {keys.v1.key_id: 3}

    harness.run(body)
