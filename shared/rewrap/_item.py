"""Rewrapping one DEK: unwrap under its own version, verify, wrap under the target.

The result is either a :class:`~shared.stores.Rewrap` ready to be written (batched by the
page) or an :class:`ItemVerdict` saying why nothing will be written. One bad DEK never raises
out of here: every ``Exception`` becomes a verdict; only a ``BaseException`` (cancellation, a
simulated crash) unwinds. Unwrapped material is wiped on every path.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass

from shared.crypto import AsyncKeyWrapper, DataKey, WrapAlgorithm
from shared.errors import (
    AccessDeniedError,
    IntegrityError,
    InvalidInputError,
    KeyDisabledError,
    KeyNotFoundError,
    ServiceError,
    UnsupportedAlgorithmError,
)
from shared.rewrap import _probe
from shared.rewrap._deadline import Deadline, SliceDeadlineError
from shared.rewrap._errors import RewrapTargetError
from shared.rewrap._ports import KeyVersionSource
from shared.rewrap._report import FailureReason, ItemOutcome, UnreadableReason
from shared.rewrap._retry import RetryPolicy, VaultCaller, call_store
from shared.rewrap._target import RewrapPlan, VersionBook
from shared.rewrap._triage import Action, RecordTriage, rewrap_algorithm
from shared.stores import DekRecord, Rewrap

_UNREADABLE_REASONS: tuple[tuple[type[ServiceError], UnreadableReason], ...] = (
    (KeyDisabledError, UnreadableReason.KEY_DISABLED),
    (KeyNotFoundError, UnreadableReason.KEY_NOT_FOUND),
    (AccessDeniedError, UnreadableReason.ACCESS_DENIED),
)


@dataclass(frozen=True, slots=True)
class ItemVerdict:
    """Why nothing will be written for a DEK (or, for UNREADABLE, only the mark)."""

    outcome: ItemOutcome
    reason: str = ""
    detail: str = ""


_ALREADY_CURRENT = ItemVerdict(ItemOutcome.ALREADY_CURRENT)
#: A DEK under a retired version: rewriting it would keep that version as its previous wrap.
_UNDER_RETIRED = ItemVerdict(
    ItemOutcome.FAILED,
    FailureReason.RETIRED_VERSION,
    "wrapped under a retired version (written after the retirement?); left as is",
)
_AHEAD = ItemVerdict(ItemOutcome.ALREADY_CURRENT, detail="at a version newer than the target")


def verdict_for_error(error: Exception) -> ItemVerdict:
    """Map an error raised while rewrapping one DEK to its per-item verdict."""
    for error_type, unreadable in _UNREADABLE_REASONS:
        if isinstance(error, error_type):
            return ItemVerdict(ItemOutcome.UNREADABLE, unreadable, _describe(error))
    if isinstance(error, IntegrityError):
        return ItemVerdict(ItemOutcome.FAILED, FailureReason.INTEGRITY, str(error))
    if isinstance(error, UnsupportedAlgorithmError):
        return ItemVerdict(ItemOutcome.FAILED, FailureReason.UNSUPPORTED_ALGORITHM, str(error))
    if isinstance(error, InvalidInputError):
        return ItemVerdict(ItemOutcome.FAILED, FailureReason.INTEGRITY, str(error))
    if isinstance(error, ServiceError):
        reason = FailureReason.TRANSIENT if error.transient else FailureReason.SERVICE_ERROR
        return ItemVerdict(ItemOutcome.FAILED, reason, _describe(error))
    # A bug, not a property of the DEK: name the type only (its message is unvetted).
    return ItemVerdict(ItemOutcome.FAILED, FailureReason.INTERNAL, type(error).__name__)


def _describe(error: ServiceError) -> str:
    parts = [type(error).__name__]
    if error.status is not None:
        parts.append(str(error.status))
    if error.code:
        parts.append(error.code)
    return " ".join(parts)


class ItemRewrapper:
    """Turns one scanned record into a Rewrap or a verdict."""

    def __init__(
        self,
        plan: RewrapPlan,
        keys: KeyVersionSource,
        caller: VaultCaller,
        *,
        allow_legacy_rsa1_5: bool = False,
        retry: RetryPolicy | None = None,
        probe: _probe.FaultProbe = _probe.no_probe,
        deadline: Deadline | None = None,
        retired: frozenset[str] = frozenset(),
    ) -> None:
        self._deadline = deadline
        self._plan = plan
        self._retired = retired
        self._retry = retry or RetryPolicy()
        self._keys = keys
        self._caller = caller
        self._book = VersionBook(keys, plan)
        self._triage = RecordTriage(
            plan.key_ref, plan.target_version, allow_legacy_rsa1_5=allow_legacy_rsa1_5
        )
        self._probe = probe
        self._wrappers: dict[tuple[str, WrapAlgorithm], AsyncKeyWrapper] = {}

    async def prepare(self, record: DekRecord) -> Rewrap | ItemVerdict:
        """The write to make for ``record``, or why there is none. Never raises Exception."""
        triage = self._triage.classify(record)
        if triage.action is Action.CURRENT:
            return _ALREADY_CURRENT
        if triage.action is Action.REPORT:
            return ItemVerdict(ItemOutcome.FAILED, triage.reason, triage.detail)
        if triage.version in self._retired:
            return _UNDER_RETIRED
        try:
            if await self._book.is_ahead_of_target(triage.version):
                return _AHEAD
            return await self._rewrap(record, triage.version)
        except (RewrapTargetError, SliceDeadlineError):
            # The target itself became unusable, or the slice's time is up: a matter of the
            # job, not of this DEK (a deadline unwinds the pass; the next slice redoes the page).
            raise
        except Exception as error:  # one bad DEK never stops the job
            return verdict_for_error(error)

    async def _rewrap(self, record: DekRecord, version: str) -> Rewrap | ItemVerdict:
        assert record.algorithm is not None
        source = await self._wrapper(f"{self._plan.key_ref}/{version}", record.algorithm)
        target = await self._wrapper(self._plan.target_key_id, rewrap_algorithm(record.algorithm))
        self._probe(_probe.ITEM_BEFORE_UNWRAP)
        wrapped = record.wrapped
        dek = await self._caller.call(lambda: source.unwrap(wrapped))
        try:
            self._probe(_probe.ITEM_AFTER_UNWRAP)
            kcv = dek.kcv
            if record.kcv is not None and not hmac.compare_digest(kcv, record.kcv.lower()):
                return ItemVerdict(
                    ItemOutcome.FAILED, FailureReason.INTEGRITY, "key check value mismatch"
                )
            if record.material_prefix and not dek.reveal().startswith(record.material_prefix):
                return ItemVerdict(
                    ItemOutcome.FAILED, FailureReason.INTEGRITY, "unwrapped material prefix"
                )
            new_wrapped = await self._wrap(target, dek)
        finally:
            dek.wipe()
        self._probe(_probe.ITEM_AFTER_WRAP)
        return Rewrap(
            record=record,
            key_id=self._plan.target_key_id,
            algorithm=target.algorithm,
            wrapped=new_wrapped,
            kcv=record.kcv or kcv,
        )

    async def _wrap(self, target: AsyncKeyWrapper, dek: DataKey) -> bytes:
        """Wrap under the target (local with the public key; a key fetch may go remote).

        Raises:
            RewrapTargetError: the vault refuses the target version now (disabled, deleted,
                access lost): every remaining DEK would fail the same way, so the job stops.
            InvalidInputError: the material does not fit the target key.
        """
        try:
            return await call_store(lambda: target.wrap(dek), self._retry, deadline=self._deadline)
        except (KeyDisabledError, KeyNotFoundError, AccessDeniedError) as error:
            raise RewrapTargetError(
                f"the target {self._plan.target_key_id} refused wrap ({_describe(error)}); "
                "stopping the job",
                key_ref=self._plan.key_ref,
                version=self._plan.target_version,
            ) from None

    async def _wrapper(self, key_id: str, algorithm: WrapAlgorithm) -> AsyncKeyWrapper:
        cached = self._wrappers.get((key_id, algorithm))
        if cached is None:
            cached = await self._keys.wrapper(key_id, algorithm)
            self._wrappers[(key_id, algorithm)] = cached
        return cached
