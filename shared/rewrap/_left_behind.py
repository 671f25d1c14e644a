"""The count of DEKs a pass left behind: which versions are behind, and a resumable count.

A job's status must say whether it is done: after the passes, DEKs may still be wrapped
under versions older than the target (unreadable ones; DEKs an application wrote under an
old version behind the scan), and the job then ends ``INCOMPLETE`` rather than
``COMPLETED``. Finding them reads every DEK of the key in the store (Storage only, no vault
call). At 10 million DEKs that read takes longer than a slice, so the count cannot be one
call that the next slice starts again: every slice would restart it and the job would never
end. It pages the store instead (``DekStore.count_versions``) and checkpoints after every
page on the job (:class:`~shared.rewrap._passes.LeftBehindCount`, through the ledger, like
the scan's pages), so a slice's end or a crash resumes it where it stopped.

:func:`behind_in` is the one rule of what counts as behind.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable

from shared.rewrap._deadline import Deadline, SliceDeadlineError
from shared.rewrap._ledger import JobLedger
from shared.rewrap._retry import call_store
from shared.rewrap._settings import EngineSettings
from shared.rewrap._target import RewrapPlan
from shared.stores import CountPage, DekStore, VersionCount


def behind_in(counts: Iterable[VersionCount], plan: RewrapPlan) -> int:
    """DEKs in ``counts`` (a page's or a whole store's) wrapped under versions of the plan's
    key older than the target.

    Versions newer than the target (a rotation during the job) are ahead, not behind; a
    version the plan does not know counts as behind (the next run's plan will know it).
    Counts of other keys (a store's listing may hold neighbours) are not the job's.
    """
    prefix = plan.key_ref.lower() + "/"
    target_created = plan.target.created
    left = 0
    for entry in counts:
        key_id = entry.key_id.lower()
        if not key_id.startswith(prefix) or not entry.current:
            continue
        version = key_id[len(prefix) :]
        if version == plan.target_version:
            continue
        known = plan.versions.get(version)
        if known is not None and known.created > target_created:
            continue
        left += entry.current
    return left


async def count_left_behind(
    store: DekStore,
    plan: RewrapPlan,
    ledger: JobLedger,
    settings: EngineSettings,
    *,
    stop: Callable[[], bool] | None,
    deadline: Deadline | None,
) -> int | None:
    """DEKs still wrapped under versions older than the target once the passes are done;
    ``None`` when the slice ended first (the count is checkpointed: run the job again).

    Resumes from the job's checkpoint (``ledger.state.left_behind_count``; a fresh pass
    starts with an empty one) and checkpoints after every page, so no page is counted twice
    and none is skipped. ``stop`` (the engine's ``should_stop``) and the deadline are asked
    between pages, as the scan does; the pages are not paced by the vault's limiter (they
    send it nothing).

    Raises:
        SliceDeadlineError: a page (or a store retry's wait) would end past ``deadline``.
        JobLeaseError: another worker took the job over.
        ServiceError: the store or the job store failed past retries.
    """
    count = ledger.state.left_behind_count
    while not count.done:
        if (stop is not None and stop()) or (deadline is not None and deadline.expired()):
            return None
        page = await _count_page(store, plan, count.continuation, settings, deadline)
        count = count.after(behind_in(page.counts, plan), page.continuation)
        await ledger.checkpoint_count(count)
    return count.behind


async def _count_page(
    store: DekStore,
    plan: RewrapPlan,
    continuation: str | None,
    settings: EngineSettings,
    deadline: Deadline | None,
) -> CountPage:
    """One count page, retried per the store policy, bounded by the deadline (a page
    still running then is dropped: the checkpoint before it stands)."""
    page = call_store(
        lambda: store.count_versions(
            plan.key_ref, continuation=continuation, page_size=settings.count_page_size
        ),
        settings.retry,
        deadline=deadline,
    )
    if deadline is None:
        return await page
    try:
        return await asyncio.wait_for(page, max(0.0, deadline.remaining()))
    except TimeoutError:
        raise SliceDeadlineError("counting the DEKs left behind passed the deadline") from None
