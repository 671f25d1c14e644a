"""The Face service: watch Face accounts' customer-managed keys; flag, tell and re-point.

Composes the pure domain (:mod:`shared.face`: ``evaluate``, ``next_flag_state``,
``rotation_follow_up``, ``AccountIndex``) with the adapters built by
:func:`build_face_service`. Four entry points, each safe to repeat:

* :meth:`FaceService.on_new_key_version`: a key rotated; accounts pinned to an older version
  are re-pointed (setting ``KEYWARD_FACE_REPOINT``) or left to be flagged ``STALE_KEY_VERSION``;
  then they are evaluated.
* :meth:`FaceService.reevaluate`: an access change (policy, role, vault) in a scope.
* :meth:`FaceService.sweep`: refresh the inventory and evaluate every account; re-points
  stragglers whose rotation event was missed.
* :meth:`FaceService.status` / :meth:`FaceService.pinned_versions`: for ``GET /api/status``
  and the rewrap retirement report.

**Effects only on a change, at most once.** ``next_flag_state`` decides; the effects
(publish, then tag) are first written down as a pending marker with the record, each effect
advances it, and the new record replaces it (see :mod:`shared.services._face_effects`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from shared.adapters.flag_store import record_to_dict
from shared.adapters.key_access import vault_name_for
from shared.crypto import VaultAllowList
from shared.errors import ConflictError, KeywardError
from shared.events import AccessScope
from shared.face import (
    AccountIndex,
    FaceAccount,
    FaceAccountWriter,
    FaceInventory,
    FlagRecord,
    KeyAccessFacts,
    KeyAccessReader,
    KeyPresence,
    LookupStatus,
    Reason,
    RotationAction,
    Status,
    evaluate,
    next_flag_state,
    rotation_follow_up,
)
from shared.services._face_build import build_face_service
from shared.services._face_effects import EffectRunner, FlagJournal, OutcomeCounts

__all__ = ["FaceService", "FaceSummary", "build_face_service"]

_LOG = logging.getLogger(__name__)
Clock = Callable[[], datetime]
#: Accounts evaluated at once (each evaluation makes a handful of ARM and Key Vault calls).
DEFAULT_CONCURRENCY = 8


@dataclass
class FaceSummary(OutcomeCounts):
    """What one call did, for the function's one log line and the HTTP answers."""

    accounts: int = 0
    statuses: Counter[str] = field(default_factory=Counter)
    repointed: int = 0
    stale: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "accounts": self.accounts,
            "statuses": dict(self.statuses),
            "events": self.events,
            "tag_writes": self.tag_writes,
            "repointed": self.repointed,
            "stale": self.stale,
            "conflicts": self.conflicts,
            "failures": self.failures,
        }


class FaceService:
    """Face accounts' key access: verdicts, flags, events, tags, re-pointing."""

    def __init__(
        self,
        inventory: FaceInventory,
        reader: KeyAccessReader,
        writer: FaceAccountWriter,
        journal: FlagJournal,
        effects: EffectRunner,
        *,
        allow_list: VaultAllowList,
        repoint: bool = False,
        warning_window: timedelta = timedelta(days=30),
        clock: Clock | None = None,
        concurrency: int = DEFAULT_CONCURRENCY,
        closers: Sequence[object] = (),
    ) -> None:
        self._inventory = inventory
        self._reader = reader
        self._writer = writer
        self._journal = journal
        self._effects = effects
        self._allow_list = allow_list
        self._repoint = repoint
        self._window = warning_window
        self._clock = clock or (lambda: datetime.now(UTC))
        self._limit = asyncio.Semaphore(concurrency)
        self._closers = tuple(closers)
        self._index: AccountIndex | None = None
        # One evaluation per account at a time in this process (a sweep and an event may
        # overlap); other processes are kept apart by the flag store's ETag conditions.
        self._busy: dict[str, asyncio.Lock] = {}

    # -- entry points ------------------------------------------------------------------------

    async def refresh(self) -> AccountIndex:
        """List the accounts again and rebuild the index.

        Raises:
            ServiceError: ARM failed the listing (the previous index is kept).
        """
        self._index = AccountIndex(await self._inventory.list_accounts())
        return self._index

    async def sweep(self) -> FaceSummary:
        """Refresh the inventory, evaluate every account (re-pointing stragglers when allowed).

        Raises:
            ServiceError: the inventory could not be listed (nothing was evaluated).
        """
        index = await self.refresh()
        return await self._run(index.accounts, follow_up=True)

    async def on_new_key_version(self, key_ref: str, version: str) -> FaceSummary:
        """Rotation follow-up for the accounts on ``key_ref``, then their verdicts.

        ``version`` is the event's; the target is the version the vault calls current.
        """
        accounts = (await self._index_for(key_ref)).for_key(key_ref)
        _LOG.info("new version %s of %s: %d Face account(s)", version, key_ref, len(accounts))
        return await self._run(accounts, follow_up=True)

    async def reevaluate(self, scope: AccessScope) -> FaceSummary:
        """Evaluate the accounts an access change may affect."""
        index = await self._index_for(None)
        accounts = [a for a in index.accounts if self._in_scope(a, scope)]
        return await self._run(accounts, follow_up=False)

    async def status(self) -> Sequence[Mapping[str, Any]]:
        """Every flag record, JSON-ready, for ``GET /api/status``.

        Raises:
            ServiceError: the flag table could not be read.
        """
        return [record_to_dict(record) for record in await self._journal.all()]

    async def pinned_versions(self, key_ref: str) -> Mapping[str, Sequence[str]]:
        """Version -> ids of the accounts pinned to it ("safe to disable" needs none)."""
        pinned: dict[str, list[str]] = {}
        for account in (await self._index_for(None)).for_key(key_ref):
            if account.key_version:
                pinned.setdefault(account.key_version, []).append(account.id)
        return {version: tuple(ids) for version, ids in pinned.items()}

    async def close(self) -> None:
        """Close every adapter (each on its own: one failing close leaves none open)."""
        for closer in self._closers:
            close = getattr(closer, "close", None)
            if close is not None:
                with contextlib.suppress(Exception):
                    await close()

    # -- one account -------------------------------------------------------------------------

    async def _run(self, accounts: Sequence[FaceAccount], *, follow_up: bool) -> FaceSummary:
        summary = FaceSummary(accounts=len(accounts))

        async def one(account: FaceAccount) -> None:
            lock = self._busy.setdefault(account.id.lower(), asyncio.Lock())
            async with self._limit, lock:
                try:
                    await self._account(account, summary, follow_up=follow_up)
                except ConflictError:
                    summary.conflicts += 1  # another instance is handling this account
                except KeywardError as error:
                    summary.failures += 1
                    _LOG.warning("Face account %s not evaluated: %s", account.id, error)

        await asyncio.gather(*(one(a) for a in accounts))
        return summary

    async def _account(
        self, account: FaceAccount, summary: FaceSummary, *, follow_up: bool
    ) -> None:
        """Read facts, follow a rotation up when asked, evaluate, apply the flag transition.

        Raises:
            ConflictError: another writer changed the account's flag meanwhile.
            ServiceError: a write (ARM, table, Event Grid) failed; the marker keeps the rest.
        """
        facts = await self._reader.read(account)
        now = self._clock()
        if follow_up and facts.lookup is LookupStatus.OK and facts.key is not None:
            account = await self._follow_up(account, facts, now, summary)
        previous = await self._effects.resume(account.id, summary)
        facts = _with_purge(facts, previous)
        verdict = evaluate(account, facts, now, self._window)
        summary.statuses[verdict.status.value] += 1
        transition = next_flag_state(previous, verdict, account, now)
        await self._effects.apply(previous, transition, summary)

    async def _follow_up(
        self, account: FaceAccount, facts: KeyAccessFacts, now: datetime, summary: FaceSummary
    ) -> FaceAccount:
        assert facts.key is not None
        decision = rotation_follow_up(account, facts.key, now, repoint_allowed=self._repoint)
        if decision.action is RotationAction.FLAG_STALE:
            summary.stale += 1
            _LOG.info("%s stays pinned: %s", account.id, decision.reason)
        if decision.action is not RotationAction.REPOINT or decision.target_version is None:
            return account
        await self._writer.set_key_version(account, decision.target_version)
        summary.repointed += 1
        repointed = replace(account, key_version=decision.target_version)
        if self._index is not None:
            others = [a for a in self._index.accounts if a.id != account.id]
            self._index = AccountIndex([*others, repointed])
        return repointed

    # -- helpers -----------------------------------------------------------------------------

    async def _index_for(self, key_ref: str | None) -> AccountIndex:
        """The cached index; listed again when there is none or it knows no such key."""
        if self._index is None or (key_ref is not None and not self._index.for_key(key_ref)):
            return await self.refresh()
        return self._index

    def _in_scope(self, account: FaceAccount, scope: AccessScope) -> bool:
        if scope.vault_name is None:
            return True
        if vault_name_for(account.key_vault_uri, self._allow_list) != scope.vault_name.lower():
            return False
        return scope.key_name is None or scope.key_name.lower() == account.key_name.lower()


def _with_purge(facts: KeyAccessFacts, previous: FlagRecord | None) -> KeyAccessFacts:
    """A key the vault no longer has, deleted or not, that keyward saw before: PURGED."""
    key = facts.key
    if key is None or key.presence is not KeyPresence.MISSING or previous is None:
        return facts
    reasons = {f.reason for f in previous.reasons}
    if previous.status is Status.UNKNOWN or reasons & {Reason.KEY_MISSING, Reason.KEY_PURGED}:
        return facts
    return replace(facts, key=replace(key, presence=KeyPresence.PURGED))
