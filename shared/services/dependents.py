"""One kind of key-dependent resource: watch the keys, flag, tell and re-point.

Composes the pure domain (:mod:`shared.dependents`) with one :class:`DependentKind` (its ARM
inventory, writer, labels and verdict rules), the key-access reader, flag journal and effect
runner, all built by ``shared.composition``. Entry points, each safe to repeat:

* ``on_key_event``: what one Key Vault event asks, in ONE evaluation per account: accounts on
  a rotated key are re-pointed (the kind's ``REPOINT`` setting) or flagged
  ``STALE_KEY_VERSION``, accounts in an access scope re-checked. Event Grid gives the trigger
  30 s: a second evaluation (twice the ARM and vault calls) is not affordable.
  ``on_new_key_version`` and ``reevaluate`` are its two halves alone.
* ``sweep``: list again and evaluate every account; re-points stragglers whose rotation
  event was missed.
* ``status`` / ``pinned_versions``: for ``GET /api/status`` and the retirement report.

**Effects only on a change, at most once.** ``next_flag_state`` decides; the effects
(publish, then tag) are first written down as a pending marker with the record, each effect
advances it, and the new record replaces it (see :mod:`shared.services._dependent_effects`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from shared import telemetry
from shared.crypto import VaultAllowList
from shared.dependents import (
    AccountIndex,
    DependentKind,
    DependentResource,
    KeyAccessFacts,
    KeyAccessReader,
    LookupStatus,
    RotationAction,
    evaluate,
    next_flag_state,
    record_to_dict,
    rotation_follow_up,
    with_purge,
)
from shared.errors import AccessDeniedError, ConflictError, KeywardError
from shared.events import AccessScope, FollowUpRotation
from shared.rewrap import (
    EVERY_OLDER_VERSION,
    NOTE_VERSION_IN_USE,
    NOTE_VERSION_UNKNOWN,
    PinnedResource,
)
from shared.services._dependent_effects import DependentSummary, EffectRunner, FlagJournal
from shared.services._ports import FlagsPage

__all__ = ["DependentService", "DependentSummary"]

_LOG = logging.getLogger(__name__)
Clock = Callable[[], datetime]
#: Accounts evaluated at once (each evaluation makes a handful of ARM and Key Vault calls).
DEFAULT_CONCURRENCY = 8


class DependentService:
    """One kind's accounts and their key access: verdicts, flags, events, tags, re-pointing."""

    def __init__(
        self,
        kind: DependentKind,
        reader: KeyAccessReader,
        journal: FlagJournal,
        effects: EffectRunner,
        *,
        allow_list: VaultAllowList,
        repoint: bool = False,
        repoint_setting: str = "REPOINT",
        warning_window: timedelta = timedelta(days=30),
        clock: Clock | None = None,
        concurrency: int = DEFAULT_CONCURRENCY,
        closers: Sequence[object] = (),
    ) -> None:
        self.kind = kind  # the kind this service watches (name, labels, adapters, rules)
        self._inventory = kind.inventory
        self._reader = reader
        self._writer = kind.writer
        self._journal = journal
        self._effects = effects
        self._allow_list = allow_list
        self._repoint = repoint
        self._repoint_setting = repoint_setting
        self._window = warning_window
        self._clock = clock or (lambda: datetime.now(UTC))
        self._limit = asyncio.Semaphore(concurrency)
        self._closers = tuple(closers)
        self._index: AccountIndex | None = None
        # One evaluation per account at a time in this process (a sweep and an event may
        # overlap); other processes are kept apart by the flag store's ETag conditions.
        self._busy: dict[str, asyncio.Lock] = {}

    # -- entry points ------------------------------------------------------------------------

    async def refresh(self, *, fresh: bool = True) -> AccountIndex:
        """List the accounts again and rebuild the index; ``fresh=False`` accepts an
        inventory the kind's adapter cached (Resource Graph's rows, for
        ``KEYWARD_INVENTORY_CACHE_SECONDS``): what key events use, so a burst of events for
        keys no resource uses costs one query, not one each.

        Raises:
            ServiceError: ARM failed the listing (the previous index is kept).
        """
        invalidate = getattr(self._inventory, "invalidate", None)
        if fresh and callable(invalidate):
            invalidate()
        self._index = AccountIndex(await self._inventory.list_accounts())
        return self._index

    async def sweep(self, *, refresh: bool = True) -> DependentSummary:
        """Refresh the inventory (unless the caller just did), evaluate every account
        (re-pointing stragglers when allowed).

        Raises:
            ServiceError: the inventory could not be listed (nothing was evaluated).
        """
        index = await self.refresh() if refresh or self._index is None else self._index
        return await self._run(index.accounts, follow_up=None)

    async def on_key_event(
        self, rotations: Sequence[FollowUpRotation], scopes: Sequence[AccessScope]
    ) -> DependentSummary:
        """Everything one event asks of this kind, evaluating each account at most once.

        Accounts on a rotated key get the rotation follow-up (then their verdict); accounts
        only in an access scope get their verdict. ``version`` of a rotation is the event's;
        the re-point target is the version the vault calls current.
        """
        index = await self._index_for([rotation.key_ref for rotation in rotations])
        follow: dict[str, DependentResource] = {}
        for rotation in rotations:
            accounts = index.for_key(rotation.key_ref)
            count, noun = len(accounts), self.kind.labels.noun
            _LOG.info(
                "new version %s of %s: %d %s(s)", rotation.version, rotation.key_ref, count, noun
            )
            follow.update((a.id.lower(), a) for a in accounts)
        chosen = dict(follow)
        for scope in scopes:
            for account in index.in_scope(scope, self._allow_list):
                chosen.setdefault(account.id.lower(), account)
        return await self._run(list(chosen.values()), follow_up=set(follow))

    async def on_new_key_version(self, key_ref: str, version: str) -> DependentSummary:
        """Rotation follow-up for the accounts on ``key_ref``, then their verdicts."""
        return await self.on_key_event([FollowUpRotation(key_ref, version)], [])

    async def reevaluate(self, scope: AccessScope) -> DependentSummary:
        """Evaluate the accounts an access change may affect."""
        return await self.on_key_event([], [scope])

    async def status(self, limit: int) -> FlagsPage:
        """At most ``limit`` flag records, JSON-ready, for ``GET /api/status``, and whether
        more exist (bounded: the sweep, not a request, reads every account).

        Raises: ServiceError: the flag table could not be read."""
        records, more = await self._journal.first(limit)
        return FlagsPage(tuple(record_to_dict(record) for record in records), more)

    async def pinned_versions(
        self, key_ref: str, *, fresh: bool = True
    ) -> Mapping[str, Sequence[str]]:
        """Version -> the resources pinned to it ("safe to disable" needs none), each its
        ARM id carrying its kind and name (:class:`PinnedResource`) for the report.

        A resource that follows the key's latest version is re-pointed never, but it is not
        free of old versions: Azure Storage moves to a new one only within a day. It counts
        under the version its service reports using (``version_in_use``, noted
        :data:`NOTE_VERSION_IN_USE`); when that is unknown, under :data:`EVERY_OLDER_VERSION`
        (the verdict lists it under every version but the newest enabled, noted
        :data:`NOTE_VERSION_UNKNOWN`): never "safe" on a guess.

        Read from a fresh inventory (``fresh=False``: the caller just refreshed it): "safe to
        disable" is acted on irreversibly, so it never rests on a cached listing.

        Raises:
            AccessDeniedError: the inventory cannot see a watched subscription (Resource
                Graph shows only what keyward may read): its resources would be missing.
            ServiceError: the inventory could not be listed.
        """
        pinned: dict[str, list[str]] = {}
        index = await self.refresh() if fresh or self._index is None else self._index
        missing = tuple(getattr(self._inventory, "missing_subscriptions", ()))
        if missing:
            raise AccessDeniedError(
                f"the {self.kind.name} inventory cannot see watched subscription(s) "
                f"{', '.join(missing)} (keyward has no Reader role there?): which versions "
                "their resources use is unknown, so no version can be called safe",
                status=403,
                code="SubscriptionNotReadable",
            )
        for account in index.for_key(key_ref):
            if account.key_version:
                version, note = account.key_version, ""
            elif account.version_in_use:
                version, note = account.version_in_use, NOTE_VERSION_IN_USE
            elif account.version_in_use_unknown:
                version, note = EVERY_OLDER_VERSION, NOTE_VERSION_UNKNOWN
            else:
                continue
            entry = PinnedResource(
                account.id,
                kind=self.kind.name,
                resource_kind=account.kind,
                name=account.name,
                note=note,
            )
            pinned.setdefault(version, []).append(entry)
        return {version: tuple(ids) for version, ids in pinned.items()}

    async def close(self) -> None:
        """Close every adapter (each on its own: one failing close leaves none open)."""
        for closer in self._closers:
            close = getattr(closer, "close", None)
            if close is not None:
                with contextlib.suppress(Exception):
                    await close()

    # -- one account -------------------------------------------------------------------------

    async def _run(
        self, accounts: Sequence[DependentResource], *, follow_up: set[str] | None
    ) -> DependentSummary:
        """Evaluate ``accounts``, each once; ``follow_up``: lower-case ids that get the
        rotation follow-up first (``None``: all of them)."""
        summary = DependentSummary(accounts=len(accounts))
        begin_pass = getattr(self._reader, "begin_pass", None)
        if callable(begin_pass):
            begin_pass()  # what accounts share (vault, assignments) is read fresh once

        async def one(account: DependentResource) -> None:
            key = account.id.lower()
            lock = self._busy.setdefault(key, asyncio.Lock())
            async with self._limit, lock:
                try:
                    await self._account(
                        account, summary, follow_up=follow_up is None or key in follow_up
                    )
                except ConflictError:
                    summary.conflicts += 1  # another instance is handling this account
                except KeywardError as error:
                    summary.failures += 1
                    noun = self.kind.labels.noun
                    _LOG.warning("%s %s not evaluated: %s", noun, account.id, error)

        await asyncio.gather(*(one(a) for a in accounts))
        return summary

    async def _account(
        self, account: DependentResource, summary: DependentSummary, *, follow_up: bool
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
        facts = with_purge(facts, previous)
        verdict = evaluate(account, facts, now, self._window, self.kind.rules)
        summary.statuses[verdict.status.value] += 1
        transition = next_flag_state(previous, verdict, account, now)
        await self._effects.apply(previous, transition, summary)
        if previous is None or previous.status is not transition.record.status:
            telemetry.dependent_verdict_changed(self.kind.name, verdict.status.value)

    async def _follow_up(
        self,
        account: DependentResource,
        facts: KeyAccessFacts,
        now: datetime,
        summary: DependentSummary,
    ) -> DependentResource:
        assert facts.key is not None
        decision = rotation_follow_up(
            account,
            facts.key,
            now,
            repoint_allowed=self._repoint,
            repoint_setting=self._repoint_setting,
        )
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

    async def _index_for(self, key_refs: Sequence[str]) -> AccountIndex:
        """The cached index; listed again when there is none or a key is new to it."""
        if self._index is None or any(not self._index.for_key(k) for k in key_refs):
            return await self.refresh(fresh=False)
        return self._index
