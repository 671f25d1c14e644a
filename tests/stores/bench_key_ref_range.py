"""What the Table store's key-id spelling range costs against the exact filter it replaced.

Run: ``.venv/bin/python -m tests.stores.bench_key_ref_range [N]`` (default N=2000). It starts
Azurite, seeds N DEKs of ``dek-kek`` (half spelled ``DEK-Kek``), N of ``archive-kek`` (whose
ref sorts inside the range) and N of ``payments-kek`` (outside), then reads every matching
row twice per filter and prints rows returned, wall and client CPU per pass.

Measured (2 cores shared with a test suite, Azurite 3.37, N=2000), second pass:

    filter           rows   wall ms   CPU ms
    exact (old)      1000      32.4     10.6   <- misses the DEK-Kek half
    spelling range   4000     152.3     56.5   <- 2000 of them archive-kek, dropped client-side

about 0.015 ms of client CPU per foreign row returned.
"""

from __future__ import annotations

import asyncio
import sys
import time
import uuid

from cryptography.hazmat.primitives.asymmetric import rsa

from devtools.azurite import run_azurite
from devtools.seed import seed_deks
from shared.adapters.dek_table import TableDekStore
from shared.adapters.dek_table._entity import COUNT_COLUMNS
from shared.adapters.dek_table._query import query_all, quote_value, spellings_filter
from shared.crypto import LocalRsaWrapper

VAULT = "https://kwtest.vault.azure.net"
KEY_REF = f"{VAULT}/keys/dek-kek"


async def measure(connection_string: str, count: int) -> None:
    store = TableDekStore.from_connection_string(connection_string, f"b{uuid.uuid4().hex[:12]}")
    await store.create_table()
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    sizes = {"dek-kek": count // 2, "DEK-Kek": count // 2, "archive-kek": count,
             "payments-kek": count}  # fmt: skip
    for name, size in sizes.items():
        wrapper = LocalRsaWrapper(f"{VAULT}/keys/{name}/{'1' * 32}", private_key=private)
        await seed_deks(store, wrapper, size, partitions=8, prefix=name)
    filters = {
        "exact (old)": f"KeyRef eq {quote_value(KEY_REF)}",
        "spelling range": spellings_filter("KeyRef", KEY_REF),
    }
    print(f"{'filter':16} {'rows':>5} {'wall ms':>9} {'CPU ms':>8}")
    for _ in range(2):
        for label, query in filters.items():
            wall, cpu, rows = time.perf_counter(), time.process_time(), 0
            async for _entity in query_all(store._table, query, COUNT_COLUMNS, "bench"):
                rows += 1
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            print(f"{label:16} {rows:5} {wall * 1000:9.1f} {cpu * 1000:8.1f}")
    await store.close()


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    with run_azurite() as info:
        asyncio.run(measure(info.connection_string, count))


if __name__ == "__main__":
    main()
