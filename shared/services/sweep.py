"""The rewrap reconciliation sweep (the ``sweep`` timer): reconcile what events miss.

Event Grid may drop a delivery after its retries, so a rotation can reach keyward with no
event. So every few minutes the sweep:

* lists each allowed vault's keys and, per DEK store, checks that a job for the key's newest
  enabled version exists; where none does and DEKs still use an older version (a missed
  rotation event), it starts one;
* resumes jobs that stopped (failed, or running with a lapsed lease: a worker died);
* retries jobs that ended short of clean (``COMPLETED_WITH_FAILURES``: items failed;
  ``INCOMPLETE``: DEKs left under older versions) once their backoff has passed, while they
  have attempts left (``JobState.max_attempts``; each run counts one), and reports those that
  spent them (``POST /api/rewrap`` with ``"restart": true`` runs them again). The sweep only
  re-queues the job's shard message: its cost is one job read per key and shard, whatever
  the number of DEKs; the worker does the work.

The revocation verdicts (access lost through disable, delete, purge, expiry or a removed
role) are the ``dependents_sweep`` timer's (:mod:`shared.services.dependents_sweep`), on a
schedule of their own: a slow reconciliation never delays them, nor they it.

It is idempotent: with nothing changed, a sweep enqueues nothing and publishes nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from shared.crypto import VaultAllowList
from shared.errors import AccessDeniedError, KeyDisabledError, KeyNotFoundError, ServiceError
from shared.rewrap import (
    JobStatus,
    JobStore,
    KeyVersionSource,
    RetiredVersions,
    ShardMessage,
    fold_key,
    rewrap_job_id,
)
from shared.services._ports import KeyLister, ShardQueue
from shared.stores import DekStore

_log = logging.getLogger("keyward.sweep")


@dataclass
class SweepReport:
    keys_checked: int = 0
    jobs_started: list[str] = field(default_factory=list)
    jobs_resumed: list[str] = field(default_factory=list)
    jobs_retried: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def log_line(self) -> str:
        return (
            f"sweep keys={self.keys_checked} started={len(self.jobs_started)} "
            f"resumed={len(self.jobs_resumed)} retried={len(self.jobs_retried)} "
            f"problems={len(self.problems)}"
        )


def _utc_now() -> datetime:
    return datetime.now(UTC)


class SweepService:
    """The service behind the ``sweep`` timer."""

    def __init__(
        self,
        *,
        allow_list: VaultAllowList,
        lister: KeyLister,
        keys: KeyVersionSource,
        stores: Mapping[str, DekStore],
        job_store: Callable[[str], JobStore],
        queue: ShardQueue,
        now: Callable[[], datetime] = _utc_now,
        retired: RetiredVersions | None = None,
    ) -> None:
        self._allow_list = allow_list
        self._retired = retired
        self._lister = lister
        self._keys = keys
        self._stores = stores
        self._job_store = job_store
        self._queue = queue
        self._now = now

    async def run(self) -> SweepReport:
        """One sweep. Vault-level problems are reported and the sweep goes on.

        Raises:
            ServiceError: keyward's own storage (job store, queue) failed.
        """
        report = SweepReport()
        for vault in self._allow_list.vaults:
            try:
                key_refs = await self._lister.list_keys(vault.url)
            except ServiceError as error:
                report.problems.append(f"{vault.name}: cannot list keys ({type(error).__name__})")
                continue
            for key_ref in key_refs:
                report.keys_checked += 1
                await self._reconcile_key(key_ref, report)
        _log.info(report.log_line())
        return report

    async def _reconcile_key(self, key_ref: str, report: SweepReport) -> None:
        try:
            newest = await self._keys.newest_enabled_version(key_ref)
        except (KeyNotFoundError, KeyDisabledError, AccessDeniedError) as error:
            # No usable version: nothing to rewrap to. The dependents sweep judges the loss.
            report.problems.append(f"{key_ref}: {type(error).__name__}")
            return
        await self._alert_retired(key_ref, report)
        for shard, store in self._stores.items():
            job_id = rewrap_job_id(key_ref, newest, shard)
            stored = await self._job_store(shard).get(job_id)
            message = ShardMessage(job_id, key_ref, newest, shard)
            if stored is None:
                if await self._has_older_deks(store, key_ref, newest):
                    await self._queue.send(message)
                    report.jobs_started.append(job_id)
                continue
            state = stored.state
            now = self._now()
            lapsed = state.lease_expires_at is None or state.lease_expires_at <= now
            if state.status is JobStatus.FAILED or (state.status is JobStatus.RUNNING and lapsed):
                await self._queue.send(message)
                report.jobs_resumed.append(job_id)
            elif state.status.ended and state.retry_due(now):
                await self._queue.send(message)
                report.jobs_retried.append(job_id)
            elif state.gave_up:
                report.problems.append(
                    f"{job_id}: {state.status.value} after {state.attempts} attempts; "
                    'restart it with POST /api/rewrap {"restart": true}'
                )

    async def _alert_retired(self, key_ref: str, report: SweepReport) -> None:
        """Report DEKs wrapped under a version retired through keyward: keyward is not in
        the applications' write path, so an insert under a retired version is found here."""
        if self._retired is None:
            return
        retired = await self._retired.retired_versions(key_ref)
        if not retired:
            return
        folded = fold_key(key_ref)
        for shard, store in self._stores.items():
            for count in await store.version_counts(key_ref):
                head, _, version = count.key_id.lower().rpartition("/")
                if head == folded and version in retired and (count.current or count.immutable):
                    report.problems.append(
                        f"ALERT {shard}: {count.current} DEKs and {count.immutable} immutable "
                        f"copies under retired version {key_ref}/{version}"
                    )

    @staticmethod
    async def _has_older_deks(store: DekStore, key_ref: str, newest: str) -> bool:
        prefix = key_ref.lower().rstrip("/") + "/"
        for count in await store.version_counts(key_ref):
            key_id = count.key_id.lower()
            if key_id.startswith(prefix) and key_id[len(prefix) :] != newest and count.current:
                return True
        return False
