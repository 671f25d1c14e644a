"""Table-only behaviour: what Azure Tables refuses for one entity must not sink its batch."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from devtools.azurite import AzuriteInfo
from devtools.seed import seed_deks
from shared.adapters.dek_table import TableDekStore
from shared.stores import Rewrap, WriteOutcome
from tests.stores.conftest import V2, Keys
from tests.stores.test_conformance import rewrap_to, scan_all

pytestmark = pytest.mark.azurite

#: Azure Tables caps a string property at 64 KiB; this wrap's base64 is far over it.
OVERSIZED_WRAP = b"x" * 200_000


def test_entity_refused_by_the_service_fails_alone(azurite: AzuriteInfo, keys: Keys) -> None:
    async def main() -> None:
        store = TableDekStore.from_connection_string(
            azurite.connection_string, f"faults{uuid.uuid4().hex[:12]}"
        )
        await store.create_table()
        try:
            await seed_deks(store, keys.v1, 3, partitions=1)
            records = await scan_all(store)
            rewraps = [rewrap_to(r, keys, keys.v2) for r in records]
            good = rewraps[1]
            rewraps[1] = Rewrap(good.record, good.key_id, good.algorithm, OVERSIZED_WRAP, good.kcv)
            results = await store.replace_batch(rewraps)
            assert [r.outcome for r in results] == [
                WriteOutcome.WRITTEN, WriteOutcome.FAILED, WriteOutcome.WRITTEN,
            ]  # fmt: skip
            assert "400" in results[1].detail
            assert [r.ref for r in await scan_all(store, exclude=V2)] == [records[1].ref]
        finally:
            await store.close()

    asyncio.run(main())
