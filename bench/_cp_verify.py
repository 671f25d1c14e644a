"""(g) the verification pass's DEKs/s: a fresh pass over one key's DEKs of a completed store.

``engine`` mode (the fallback the plan names while the retention branch's pass is not on
this branch): ``RewrapEngine.run(key, restart=True)`` with the app's default
``EngineSettings`` over the Table store. Every seeded DEK is already at the target; before
the pass, ``spec["stale"]`` DEKs are inserted under the key's older version (an application
writing after the job ended: what the pass is for), so the pass reads the store and
rewraps those, paced by the engine's limiter (its vault budget). The pass is time-boxed: at
``spec["seconds"]`` it is cancelled and DEKs/s is taken over the checkpoints it made (the
engine checkpoints after each page, the progress callback sees each one).

Before the pass, one page of the key's scan is timed a few times: on Azurite a Table query
with a filter on a non-key property evaluates the filter over every entity of the table and
sorts the matches (``LokiTableMetadataStore.queryTableEntities``), so a page's cost grows
with the whole table, not with the page. That explains the DEKs/s; Azure's service pages
through a partition range instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import time
from typing import Any

from bench._cp_measure import install_tally
from bench._cp_seed import PARTITIONS_PER_KEY
from bench._rewrap import _adapter
from devtools.seed import seed_deks
from shared.adapters.dek_table import TableDekStore
from shared.crypto import LocalRsaWrapper
from shared.rewrap import EngineSettings, InMemoryJobStore, JobState, RewrapEngine

#: Timed single-page scans before the pass.
PAGE_PROBES = 5


async def insert_stale(store: TableDekStore, adapter: Any, spec: dict[str, Any]) -> int:
    """Insert ``spec["stale"]`` DEKs of the key under its older version, with ids of their
    own (new partitions): what an application wrote after the job ended, for the pass to
    find. Not measured."""
    count, key_ref = int(spec.get("stale", 0)), spec["key_ref"]
    if count <= 0:
        return 0
    older = f"{key_ref}/{spec['older_version']}"
    public = await adapter.public_key(older)
    wrapper = LocalRsaWrapper(older, public_key=public.rsa_public_key)
    prefix = f"stale{time.time_ns():x}"
    return await seed_deks(store, wrapper, count, partitions=PARTITIONS_PER_KEY, prefix=prefix)


async def verify_job(spec: dict[str, Any]) -> dict[str, Any]:
    world, key_ref = spec["world"], spec["key_ref"]
    budget, covered = float(spec["seconds"]), int(spec["deks_of_key"])
    tally = install_tally({int(port): name for port, name in spec["storage_ports"].items()})
    adapter = _adapter(world, lean=True)
    store = TableDekStore.from_connection_string(world["connection_string"], spec["table"])
    settings = EngineSettings()
    marks: list[tuple[float, int]] = []

    def progress(state: JobState) -> None:
        marks.append((time.perf_counter(), state.counters.scanned))

    engine = RewrapEngine(
        store=store, keys=adapter, jobs=InMemoryJobStore(), settings=settings, progress=progress
    )
    probes: list[float] = []
    report = None
    try:
        stale = await insert_stale(store, adapter, spec)
        covered += stale
        for _ in range(PAGE_PROBES):
            started = time.perf_counter()
            await store.scan(key_ref, exclude_version=None, page_size=settings.page_size)
            probes.append((time.perf_counter() - started) * 1000)
        tally.reset()
        started = time.perf_counter()
        task = asyncio.ensure_future(engine.run(key_ref, restart=True))
        done, _ = await asyncio.wait({task}, timeout=budget)
        if done:
            report = task.result()
        else:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        seconds = time.perf_counter() - started
    finally:
        await store.close()
        await adapter.close()
    scanned = report.counters.scanned if report else (marks[-1][1] if marks else 0)
    at = (marks[-1][0] - started) if (marks and report is None) else seconds
    return {
        "mode": "engine",
        "key_ref": key_ref,
        "completed": report is not None,
        "status": report.status.value if report else "cut at the time box",
        "scanned": scanned,
        "rewrapped": report.counters.rewrapped if report else None,
        "seconds": round(at, 2),
        "time_box_seconds": budget,
        "deks_per_second": round(scanned / at, 1) if at > 0 else None,
        "deks_of_key": covered,
        "stale_inserted": stale,
        "deks_covered_per_second": round(covered / at, 1) if report and at > 0 else None,
        "storage_requests": tally.snapshot()["storage_requests"],
        "vault_requests": tally.snapshot()["vault_requests"],
        "checkpoints": len(marks),
        "page_probe_ms": [round(p, 1) for p in probes],
        "page_probe_median_ms": round(statistics.median(probes), 1),
        "settings": {
            "page_size": settings.page_size,
            "pages_in_flight": settings.pages_in_flight,
            "rate_ceiling": settings.rate_ceiling,
            "workers": settings.workers,
        },
    }


async def ranges_job(spec: dict[str, Any]) -> dict[str, Any]:
    """For each key of ``spec["keys"]`` (``{key_ref: [version, ...]}``): the rows and pages
    the service sends for the scan a pass over that key makes (the ``KeyRef`` spellings
    range and ``KeyVersion ne`` the newest version, as ``TableDekStore.scan`` asks), and how
    many of them are the key's own. Pages of 1,000 (the service's cap)."""
    from shared.adapters.dek_table._entity import SCAN_COLUMNS
    from shared.adapters.dek_table._query import (
        MAX_QUERY_PAGE,
        query_page,
        quote_value,
        spellings_filter,
    )
    from shared.stores._common import fold_key_ref, normalize_key_ref

    world = spec["world"]
    store = TableDekStore.from_connection_string(world["connection_string"], spec["table"])
    table = store._table  # the bench reads the raw pages the store's scan would filter
    found: dict[str, Any] = {}
    try:
        for key_ref, versions in spec["keys"].items():
            query = spellings_filter("KeyRef", normalize_key_ref(key_ref))
            query += f" and KeyVersion ne {quote_value(versions[-1].lower())}"
            rows = own = pages = 0
            token = None
            while True:
                entities, token = await query_page(
                    table, query, SCAN_COLUMNS, MAX_QUERY_PAGE, token, operation="probe"
                )
                pages += 1
                rows += len(entities)
                own += sum(fold_key_ref(str(e.get("KeyRef"))) == fold_key_ref(key_ref)
                           for e in entities)  # fmt: skip
                if token is None:
                    break
            found[key_ref.rsplit("/", 1)[-1]] = {"rows_sent": rows, "own": own, "pages": pages}
    finally:
        await store.close()
    return {"keys": found}
