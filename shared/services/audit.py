"""The audit trail: every mutating admin call, who made it, and how it ended.

A mutating call (rewrap, retire, migrate, rotate KEKs, replay dead letters) is recorded once,
when it was accepted or refused, in two places: a row of keyward's state table (the
:class:`AuditTrail` port; ``shared.adapters.audit_trail.TableAuditTrail`` keeps rows in dated
partitions, newest first, deleted by retention like the event ledger's) and one structured
log record (logger ``keyward.audit``) whose ``extra`` attributes carry the caller's ids, so
telemetry can filter on them. A row holds ids, role names, the target and the outcome: never
a token, a key or a wrapped key. Writing the row never fails the call it records: a lost row
is logged (the log record still says who did what).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, Protocol

from shared.errors import KeywardError
from shared.services._caller import Caller

_log = logging.getLogger("keyward.audit")

#: Audit rows the status page shows (one bounded query).
STATUS_AUDIT_ROWS = 20

#: Outcomes of a recorded call.
ACCEPTED = "accepted"
SUCCEEDED = "succeeded"
REFUSED = "refused"


@dataclass(frozen=True)
class AuditEntry:
    """One mutating call.

    Attributes:
        at: when it was answered (UTC).
        action: ``rewrap``, ``retire``, ``migrate``, ``rotate_keks``, ``replay_dead_letters``.
        caller: who asked (``None``: keyward itself, e.g. the sweep timer's KEK rotation).
        target: what it was about: a key id, ``store:key``, a vault or ``*``.
        outcome: :data:`ACCEPTED` (an operation started), :data:`SUCCEEDED` (done in the
            call) or :data:`REFUSED` (nothing changed).
        operation_id: the operation it started, if any.
        detail: the refusal's error code, or a short summary (no key material).
    """

    at: datetime
    action: str
    caller: Caller | None
    target: str
    outcome: str
    operation_id: str | None = None
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "at": self.at.isoformat(),
            "action": self.action,
            "caller": None if self.caller is None else self.caller.to_dict(),
            "target": self.target,
            "outcome": self.outcome,
            "operation_id": self.operation_id,
            "detail": self.detail,
        }


class AuditTrail(Protocol):
    """Where audit rows are kept (``shared.adapters.audit_trail.TableAuditTrail``); an entry
    travels as :meth:`AuditEntry.to_dict` (adapters sit below the services)."""

    async def append(self, entry: Mapping[str, Any]) -> None: ...

    async def recent(self, limit: int) -> list[dict[str, Any]]: ...

    async def expire(self, before: date, limit: int) -> int: ...


class InMemoryAuditTrail:
    """An audit trail in a list (service tests; the CLI's embedded mode)."""

    def __init__(self) -> None:
        self.entries: list[dict[str, Any]] = []

    async def append(self, entry: Mapping[str, Any]) -> None:
        self.entries.append(dict(entry))

    async def recent(self, limit: int) -> list[dict[str, Any]]:
        return sorted(self.entries, key=lambda e: str(e["at"]), reverse=True)[:limit]

    async def expire(self, before: date, limit: int) -> int:
        def day(entry: Mapping[str, Any]) -> date:
            return datetime.fromisoformat(str(entry["at"])).astimezone(UTC).date()

        old = [e for e in self.entries if day(e) < before][:limit]
        self.entries = [e for e in self.entries if e not in old]
        return len(old)


def log_attributes(entry: AuditEntry) -> dict[str, Any]:
    """The log record's ``extra``: action, target, outcome and the caller's ids (never its
    display name, which may be an e-mail address, nor a token)."""
    caller = entry.caller
    return {
        "keyward_action": entry.action,
        "keyward_target": entry.target,
        "keyward_outcome": entry.outcome,
        "keyward_operation_id": entry.operation_id or "",
        "caller_object_id": caller.object_id if caller else "",
        "caller_tenant_id": caller.tenant_id if caller else "",
        "caller_roles": ",".join(caller.roles) if caller else "",
        "caller_via": caller.via if caller else "system",
    }


class Auditor:
    """Records mutating calls: a row in the trail and one log record each."""

    def __init__(
        self, trail: AuditTrail, *, now: Callable[[], datetime] = lambda: datetime.now(UTC)
    ) -> None:
        self.trail = trail
        self._now = now

    async def record(
        self,
        action: str,
        caller: Caller | None,
        target: str,
        outcome: str,
        *,
        operation_id: str | None = None,
        detail: str = "",
    ) -> AuditEntry:
        entry = AuditEntry(self._now(), action, caller, target, outcome, operation_id, detail)
        _log.info(
            "audit %s %s by %s via %s: %s",
            action,
            target,
            caller.object_id if caller else "keyward",
            caller.via if caller else "system",
            outcome,
            extra=log_attributes(entry),
        )
        try:
            await self.trail.append(entry.to_dict())
        except KeywardError as error:
            _log.warning("audit row of %s not written: %s", action, type(error).__name__)
        return entry

    async def recent(self, limit: int = STATUS_AUDIT_ROWS) -> list[dict[str, Any]]:
        """The newest rows (one bounded read); ``[]`` with the error logged if unreadable."""
        try:
            return await self.trail.recent(limit)
        except KeywardError as error:
            _log.warning("audit trail not read: %s", type(error).__name__)
            return []
