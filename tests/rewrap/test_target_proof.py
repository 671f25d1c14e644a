"""The target version is proven before the first write (issue 11 item 5), in process.

The emulator twin (``test_target_proof_emulator.py``) drives the same refusals through the
real Key Vault adapter; here each refusal is pinned on the engine with a local key source.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from shared.crypto import DataKey
from shared.errors import IntegrityError
from shared.rewrap import (
    InMemoryJobStore,
    JobStatus,
    KeyVersionInfo,
    RewrapTargetError,
    rewrap_job_id,
)
from shared.rewrap._budget import vault_budget
from shared.rewrap._target import RewrapPlan
from shared.rewrap._target_proof import check_target_facts
from tests.rewrap.fakes import (
    KEY_REF,
    V1,
    V2,
    FaultyKeySource,
    MemoryDekStore,
    engine_for,
    key_source,
    populate,
    rsa_key,
)

NOW = datetime(2026, 6, 1, tzinfo=UTC)


def _plan(view: KeyVersionInfo) -> RewrapPlan:
    return RewrapPlan(KEY_REF, None, view.version, {view.version: view}, vault_budget("RSA", 2048))


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"enabled": False, "attributes_enabled": False}, "is disabled"),
        ({"not_before": NOW + timedelta(days=1)}, "not valid before"),
        ({"expires_on": NOW - timedelta(seconds=1)}, "expired at"),
        ({"enabled": False, "attributes_enabled": True, "expires_on": NOW + timedelta(days=1)},
         "expired by the vault's clock"),
        ({"key_ops": ("wrapKey", "encrypt")}, "without unwrapKey"),
        ({"key_ops": ("unwrapKey",), "key_type": "oct-HSM"}, "without wrapKey"),
    ],
)  # fmt: skip
def test_each_unusable_target_is_refused_with_its_own_reason(
    changes: dict[str, object], reason: str
) -> None:
    fields: dict[str, object] = {"version": V2, "enabled": True, "created": NOW}
    fields.update(changes)
    view = KeyVersionInfo(**fields)  # type: ignore[arg-type]
    with pytest.raises(RewrapTargetError, match=reason):
        check_target_facts(_plan(view), view, NOW)


def test_an_rsa_target_without_wrapkey_is_left_to_the_probe() -> None:
    view = KeyVersionInfo(V2, True, NOW, key_ops=("unwrapKey",))
    check_target_facts(_plan(view), view, NOW)  # RSA wraps locally: the round trip decides


def _run_refused(source: object, store: MemoryDekStore, jobs: InMemoryJobStore) -> str:
    before = dict(store.rows)
    engine = engine_for(store, source, jobs, job_scope="table:deks")  # type: ignore[arg-type]
    with pytest.raises(RewrapTargetError) as refused:
        asyncio.run(engine.run(KEY_REF))
    assert store.rows == before, "no DEK may be touched before the target is proven"
    stored = asyncio.run(jobs.get(rewrap_job_id(KEY_REF, V2, "table:deks")))
    assert stored is not None, "the job records the refusal"
    assert stored.state.status is JobStatus.FAILED
    assert stored.state.error is not None
    assert stored.state.counters.scanned == 0
    return stored.state.error + " | " + str(refused.value)


def test_a_target_whose_key_ops_lack_unwrapkey_moves_no_dek_and_the_job_says_why() -> None:
    source = key_source(V1)
    source.add_version(KEY_REF, V2, rsa_key(1), key_ops=("wrapKey", "encrypt", "verify"))
    store = MemoryDekStore()
    populate(store, source, [V1], 5)

    error = _run_refused(source, store, InMemoryJobStore())

    assert "without unwrapKey" in error


def test_a_probe_the_vault_unwraps_to_another_key_moves_no_dek() -> None:
    source = key_source(V1, V2)
    store = MemoryDekStore()
    populate(store, source, [V1], 5)

    class Liar(FaultyKeySource):
        async def wrapper(self, key_id, algorithm):  # type: ignore[no-untyped-def]
            inner = await self.inner.wrapper(key_id, algorithm)

            class Wrong:
                key_id = inner.key_id
                algorithm = inner.algorithm

                async def wrap(self, dek: DataKey) -> bytes:
                    return await inner.wrap(dek)

                async def unwrap(self, wrapped: bytes) -> DataKey:
                    return DataKey.generate()

            return Wrong()

    error = _run_refused(Liar(source, lambda _: None), store, InMemoryJobStore())

    assert "round-trip probe" in error
    assert "another key" in error


def test_a_probe_the_vault_refuses_to_unwrap_moves_no_dek() -> None:
    source = key_source(V1, V2)
    store = MemoryDekStore()
    populate(store, source, [V1], 5)
    faulty = FaultyKeySource(source, lambda _: IntegrityError("unwrap refused"), fault_probe=True)

    error = _run_refused(faulty, store, InMemoryJobStore())

    assert "round-trip probe (IntegrityError)" in error


def test_a_proven_target_is_proven_once_per_run_with_one_unwrap() -> None:
    source = key_source(V1, V2)
    store = MemoryDekStore()
    populate(store, source, [V1], 4)
    probes: list[str] = []
    faulty = FaultyKeySource(
        source, lambda key_id: probes.append(key_id) if key_id.endswith(V2) else None,
        fault_probe=True,
    )  # fmt: skip

    report = asyncio.run(engine_for(store, faulty).run(KEY_REF))

    assert report.status is JobStatus.COMPLETED
    assert probes == [f"{KEY_REF}/{V2}"]
