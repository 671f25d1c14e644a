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

The steps are the phases of a *retire operation* (``shared.services._operation_steps``:
``look``, ``record`` (steps 2 and 3), ``forget``, ``look_again``), each store read or cleared
one page per step with its progress checkpointed, so ``POST /api/retire`` runs them in the
background in slices. This class runs the same steps to the end in process, for the CLI.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from shared.rewrap import KeyVersionSource, RetiredVersions, RetirementReport, retirement_verdict
from shared.services._operation import OperationKind
from shared.services._operation_steps import (
    JobLookup,
    OperationParts,
    PinnedLookup,
    superseded_wait,
)
from shared.services.operations import run_to_end
from shared.stores import DekStore

__all__ = ["JobLookup", "PinnedLookup", "Retirement", "superseded_wait"]


@dataclass(frozen=True)
class Retirement:
    """What retiring needs: the stores, the vault, the pins, the jobs and the record."""

    stores: Mapping[str, DekStore]
    keys: KeyVersionSource
    pinned: PinnedLookup
    jobs: JobLookup
    retired: RetiredVersions
    now: Callable[[], datetime]
    #: How long after a rotation the superseded version is "not yet" answerable.
    superseded_wait: timedelta = field(default_factory=superseded_wait)

    def parts(self) -> OperationParts:
        return OperationParts(self.stores, self.keys, self.pinned, self.jobs, self.retired,
                              self.now, superseded_wait=self.superseded_wait)  # fmt: skip

    async def verdict(self, key_ref: str) -> RetirementReport:
        """The key-wide verdict (see ``shared.rewrap.retirement_verdict``), every store read
        whole in this call (the CLI's view; the admin API runs it as an operation).

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
            superseded_wait=self.superseded_wait,
        )

    async def retire(self, key_ref: str, version: str) -> dict[str, Any]:
        """Retire ``version`` of ``key_ref`` in process (the module docstring's steps, as a
        retire operation's phases run to the end here).

        Raises:
            RetirementBlockedError: something still depends on the version, or a job of the
                key is running or pending; nothing was changed.
            RetirementRaceError: the version is retired and its previous wraps are dropped,
                but the second look found something under it.
            ServiceError: the vault, a store, the job store or the record failed.
        """
        done = await run_to_end(self.parts(), OperationKind.RETIRE, key_ref, version.lower())
        return dict(done.result or {})
