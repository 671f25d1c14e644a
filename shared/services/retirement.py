"""Retiring a key version, and the verdict it rests on: one home for the admin API and the CLI.

Retiring is the decision after which "safe to disable" may be said, so it is built to survive
the races around it (issue 11 item 4):

1. Look: the key-wide verdict (every store, the vault, pinned resources, the key's jobs). Any
   blocker but the previous wraps this call is about to drop refuses the call; nothing is
   changed.
2. Record the version as retired (with this call's attempt id).
3. Look at the jobs again. A worker reads the record after writing its lease, and this call
   reads the leases after writing the record, so of a job and a retire racing, one sees the
   other. If a job started, the call withdraws its own record and refuses.
4. Drop the previous wraps kept under the version, in every store that keeps them.
5. Look again. Anything found under the version now (an application wrote a DEK, a write
   raced step 4) makes the answer a race, not "done": the version stays retired (so keyward
   keeps refusing to write under it) and the blockers are listed.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from shared.errors import RetirementBlockedError, RetirementRaceError
from shared.rewrap import (
    BlockerKind,
    JobState,
    KeyVersionSource,
    RetiredVersions,
    RetirementReport,
    retirement_verdict,
    unfinished_jobs,
)
from shared.stores import DekStore

#: version -> ids of key-dependent resources pinned to it, for one key.
PinnedLookup = Callable[[str], Awaitable[Mapping[str, Sequence[str]]]]
#: Every job state of one key, across the stores' shards.
JobLookup = Callable[[str], Awaitable[Sequence[JobState]]]


@dataclass(frozen=True)
class Retirement:
    """What retiring needs: the stores, the vault, the pins, the jobs and the record."""

    stores: Mapping[str, DekStore]
    keys: KeyVersionSource
    pinned: PinnedLookup
    jobs: JobLookup
    retired: RetiredVersions
    now: Callable[[], datetime]

    async def verdict(self, key_ref: str) -> RetirementReport:
        """The key-wide verdict (see ``shared.rewrap.retirement_verdict``).

        Raises:
            ServiceError: a store, the job store, the record or the vault could not be read.
        """
        return await retirement_verdict(
            self.stores,
            key_ref,
            keys=self.keys,
            pinned=await self.pinned(key_ref),
            jobs=await self.jobs(key_ref),
            retired=await self.retired.retired_versions(key_ref),
            now=self.now(),
        )

    async def retire(self, key_ref: str, version: str) -> dict[str, Any]:
        """Retire ``version`` of ``key_ref`` (see the module docstring for the steps).

        Raises:
            RetirementBlockedError: something still depends on the version, or a job of the
                key is running or pending; nothing was changed.
            RetirementRaceError: the version is retired and its previous wraps are dropped,
                but the second look found something under it.
            ServiceError: the vault, a store, the job store or the record failed.
        """
        target = version.lower()
        before = await self.verdict(key_ref)
        blockers = [
            blocker.describe()
            for blocker in before.entry(target).blocker_list
            if blocker.kind is not BlockerKind.PREVIOUS  # the wraps this call drops
        ]
        if blockers:
            raise RetirementBlockedError(f"{key_ref}/{target} cannot be retired yet", blockers)
        attempt = uuid.uuid4().hex
        await self.retired.record_retired(key_ref, target, attempt=attempt)
        started = unfinished_jobs(await self.jobs(key_ref), key_ref, before.newest_enabled,
                                  self.now())  # fmt: skip
        if started:
            await self.retired.withdraw_retired(key_ref, target, attempt=attempt)
            raise RetirementBlockedError(
                f"{key_ref}/{target} cannot be retired yet: a rewrap job started",
                [f"{len(started)} rewrap jobs of the key running or pending", *started],
            )
        dropped = 0
        for store in self.stores.values():
            forget = getattr(store, "forget_previous", None)
            if forget is not None:
                dropped += int(await forget(f"{key_ref}/{target}"))
        after = (await self.verdict(key_ref)).entry(target)
        if not after.safe_to_disable:
            raise RetirementRaceError(
                f"{key_ref}/{target} is retired, but something new depends on it; "
                "not safe to disable",
                after.blockers,
                dropped=dropped,
            )
        return {
            "key": key_ref,
            "version": target,
            "status": "retired",
            "safe_to_disable": True,
            "previous_wraps_dropped": dropped,
        }
