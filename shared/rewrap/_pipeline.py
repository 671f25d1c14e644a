"""One pass over a key's DEKs: scan pages, unwrap and wrap in a worker pool, write, checkpoint.

Shape: one scanner task reads pages ahead (at most ``pages_in_flight`` not yet checkpointed,
so memory stays flat however many DEKs there are) and feeds records into a bounded queue; a
fixed pool of workers (the bound on in-flight unwraps) takes records off it. The worker that
decides a page's last record writes the page's rewraps (one ``replace_batch`` per partition
chunk) and hands the page to the ledger, which checkpoints pages strictly in scan order. No
task is created per item, and nothing is logged per item.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

from shared.rewrap import _probe
from shared.rewrap._deadline import Deadline
from shared.rewrap._item import ItemRewrapper, ItemVerdict
from shared.rewrap._ledger import PASS_MAIN, JobLedger
from shared.rewrap._page import IssueSink, Page
from shared.rewrap._report import ItemOutcome
from shared.rewrap._retry import RetryPolicy, call_store
from shared.stores import DekRecord, DekStore, Rewrap

_Work = tuple[Page, DekRecord] | None


class PassRunner:
    """Runs the ledger's current pass from its checkpointed continuation to the end."""

    def __init__(
        self,
        store: DekStore,
        rewrapper: ItemRewrapper,
        ledger: JobLedger,
        *,
        key_ref: str,
        target_version: str,
        page_size: int,
        workers: int,
        pages_in_flight: int,
        retry: RetryPolicy,
        on_issue: IssueSink | None = None,
        probe: _probe.FaultProbe = _probe.no_probe,
        should_stop: Callable[[], bool] | None = None,
        deadline: Deadline | None = None,
    ) -> None:
        self._should_stop = should_stop
        #: The slice's hard deadline: every store retry checks it before waiting, and no page
        #: is scanned once it has passed (the vault caller checks it too).
        self._deadline = deadline
        #: Set when ``should_stop`` ended the scan early; every page scanned before it was
        #: still processed and checkpointed, so the job resumes right after them.
        self.stopped_early = False
        self._store = store
        self._rewrapper = rewrapper
        self._ledger = ledger
        self._key_ref = key_ref
        self._target_version = target_version
        self._page_size = page_size
        self._workers = workers
        self._retry = retry
        self._on_issue = on_issue
        self._probe = probe
        self._queue: asyncio.Queue[_Work] = asyncio.Queue(maxsize=workers * 2)
        self._slots = asyncio.Semaphore(pages_in_flight)
        self._finished: dict[int, Page] = {}
        self._next_seq = 0
        self._checkpoint_lock = asyncio.Lock()

    async def run(self) -> None:
        """Scan and process the pass; returns when its last page is checkpointed.

        Raises:
            JobLeaseError: the job was taken over by another worker.
            ServiceError: the DEK store or job store failed past the retry policy.
        """
        coroutines: list[Coroutine[Any, Any, None]] = [self._scan()]
        coroutines.extend(self._work() for _ in range(self._workers))
        await _run_all(coroutines)

    async def _scan(self) -> None:
        state = self._ledger.state
        main_pass = state.pass_number == PASS_MAIN
        continuation = state.continuation
        seq = 0
        while True:
            if seq > 0 and (
                (self._should_stop is not None and self._should_stop())
                or (self._deadline is not None and self._deadline.expired())
            ):
                self.stopped_early = True
                break
            await self._slots.acquire()
            scanned = await call_store(
                lambda c=continuation: self._store.scan(  # type: ignore[misc]
                    self._key_ref,
                    exclude_version=self._target_version,
                    continuation=c,
                    page_size=self._page_size,
                ),
                self._retry,
                deadline=self._deadline,
            )
            self._probe(_probe.PAGE_SCANNED)
            records = list(scanned.records)
            if not main_pass:
                pending = self._ledger.pending
                records = [record for record in records if record.ref in pending]
            page = Page(
                seq,
                scanned.continuation,
                len(records),
                retry_conflicts=main_pass,
                on_issue=self._on_issue,
            )
            if main_pass:
                page.counters.scanned = len(records)
            else:
                page.resolved = [record.ref for record in records]
            seq += 1
            if records:
                for record in records:
                    await self._queue.put((page, record))
            else:
                await self._finish(page)
            if scanned.continuation is None:
                break
            continuation = scanned.continuation
        for _ in range(self._workers):
            await self._queue.put(None)

    async def _work(self) -> None:
        queue = self._queue
        rewrapper = self._rewrapper
        while True:
            work = await queue.get()
            if work is None:
                return
            page, record = work
            result = await rewrapper.prepare(record)
            if isinstance(result, Rewrap):
                page.add_rewrap(result)
            elif result.outcome is ItemOutcome.UNREADABLE:
                await self._mark_unreadable(page, record, result)
            else:
                page.add_verdict(record, result)
            page.remaining -= 1
            if page.remaining == 0:
                await self._finish(page)

    async def _mark_unreadable(self, page: Page, record: DekRecord, verdict: ItemVerdict) -> None:
        self._probe(_probe.UNREADABLE_BEFORE_MARK)
        reason = str(verdict.reason)
        written = await call_store(
            lambda: self._store.mark_unreadable(record, reason),
            self._retry,
            deadline=self._deadline,
        )
        self._probe(_probe.UNREADABLE_AFTER_MARK)
        page.add_write(record, written, verdict)

    async def _finish(self, page: Page) -> None:
        """Write the page's rewraps, then checkpoint every page finished in order."""
        batches = page.batches()
        if batches:
            self._probe(_probe.PAGE_BEFORE_WRITE)
        for batch in batches:
            results = await call_store(
                lambda b=batch: self._store.replace_batch(b),  # type: ignore[misc]
                self._retry,
                deadline=self._deadline,
            )
            self._probe(_probe.BATCH_AFTER_WRITE)
            page.add_batch_results(batch, results)
        page.rewraps.clear()
        self._finished[page.seq] = page
        async with self._checkpoint_lock:
            ready: list[Page] = []
            while self._next_seq in self._finished:
                ready.append(self._finished.pop(self._next_seq))
                self._next_seq += 1
            if not ready:
                return
            await self._ledger.checkpoint(ready)
        for _ in ready:
            self._slots.release()


async def _run_all(coroutines: list[Coroutine[Any, Any, None]]) -> None:
    """Run ``coroutines`` as tasks; the first to fail cancels the rest and its error propagates
    unchanged (a ``BaseException`` too, which is how a simulated crash unwinds). Errors that
    other tasks raise as a consequence are dropped in favour of that first one."""
    first_failure: list[BaseException] = []

    def note_failure(task: asyncio.Future[None]) -> None:
        if not task.cancelled() and task.exception() is not None and not first_failure:
            first_failure.append(task.exception())  # type: ignore[arg-type]

    tasks = [asyncio.ensure_future(coroutine) for coroutine in coroutines]
    for task in tasks:
        task.add_done_callback(note_failure)
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    if first_failure:
        raise first_failure[0]
