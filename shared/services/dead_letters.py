"""Dead-lettered Event Grid deliveries: shown per vault on the status page, and replayed.

A replay hands each dead-lettered event, as it was delivered (the dead-letter properties
removed), to the SAME entry point as a fresh delivery: ``KeyEventService.handle``, which the
Event Grid trigger calls. So a replay is idempotent like every delivery (the event ledger
remembers handled events: a second replay, or a replay of an event Event Grid did deliver
later, is a duplicate and changes nothing). After the whole blob was handled:

* every event handled, duplicate or ignored: the blob moves under ``replayed/``;
* an event refused for good (rejected: malformed, foreign, a key the vault does not have):
  the handler has recorded the rejection in the ledger; the blob moves under ``rejected/``,
  so it is kept for a person but never replayed again;
* a transient fault (the handler raised): the blob stays where it is, for the next replay;
* a blob that cannot be parsed stays where it is and is reported.

Every call is bounded: at most ``max_blobs`` blobs are listed (pages of the port's size).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from shared.errors import KeywardError
from shared.events import REJECTED_PREFIX, REPLAYED_PREFIX, DeadLetterBlob
from shared.services.key_events import REJECTED, EventOutcome

_log = logging.getLogger("keyward.dead_letters")

#: Blobs a status page lists (and reads), at most: one List Blobs request.
MAX_STATUS_DEAD_LETTER_BLOBS = 50
#: Blobs one replay lists, at most, unless the caller says otherwise.
DEFAULT_REPLAY_BLOBS = 1000


class DeadLetterPageLike(Protocol):
    @property
    def blobs(self) -> tuple[DeadLetterBlob, ...]: ...
    @property
    def continuation(self) -> str | None: ...
    @property
    def listed(self) -> int: ...


class DeadLetterSource(Protocol):
    """The dead-letter container (``shared.adapters.dead_letters.BlobDeadLetters``)."""

    @property
    def name(self) -> str: ...

    async def page(self, *, limit: int, continuation: str | None = None) -> DeadLetterPageLike: ...

    async def settle(self, name: str, prefix: str) -> str: ...


async def dead_letter_status(
    source: DeadLetterSource | None, *, limit: int = MAX_STATUS_DEAD_LETTER_BLOBS
) -> dict[str, Any]:
    """Dead-lettered events per vault from ONE listed page (at most ``limit`` blobs): count,
    oldest and newest publish time, reasons; ``more``: the page did not reach the end;
    ``malformed``: blobs that could not be read. ``{"enabled": false}`` without a container.

    Raises:
        ServiceError: the container could not be read.
    """
    if source is None:
        return {"enabled": False}
    page = await source.page(limit=limit)
    vaults: dict[str, dict[str, Any]] = {}
    malformed: list[dict[str, str]] = []
    for blob in page.blobs:
        if blob.error is not None:
            malformed.append({"blob": blob.name, "error": blob.error})
            continue
        for event in blob.events:
            entry = vaults.setdefault(
                event.vault, {"events": 0, "oldest": None, "newest": None, "reasons": {}}
            )
            entry["events"] += 1
            when = event.published or blob.last_modified
            if when is not None:
                if entry["oldest"] is None or when < entry["oldest"]:
                    entry["oldest"] = when
                if entry["newest"] is None or when > entry["newest"]:
                    entry["newest"] = when
            reasons: dict[str, int] = entry["reasons"]
            reasons[event.reason] = reasons.get(event.reason, 0) + 1
    return {
        "enabled": True,
        "container": source.name,
        "vaults": dict(sorted(vaults.items())),
        "blobs": len(page.blobs),
        "listed": page.listed,
        "malformed": malformed,
        "more": page.continuation is not None,
        "limit": limit,
    }


@dataclass
class ReplayReport:
    """What a replay did (or, dry, would do), blob by blob."""

    dry_run: bool
    replayed: list[dict[str, Any]] = field(default_factory=list)
    rejected: list[dict[str, Any]] = field(default_factory=list)
    failed: list[dict[str, Any]] = field(default_factory=list)
    malformed: list[dict[str, str]] = field(default_factory=list)
    skipped: int = 0
    more: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "dry_run": self.dry_run,
            "replayed": self.replayed,
            "rejected": self.rejected,
            "failed": self.failed,
            "malformed": self.malformed,
            "skipped": self.skipped,
            "more": self.more,
        }


class DeadLetterReplay:
    """Replays dead-lettered events through the fresh-delivery handler."""

    def __init__(
        self,
        source: DeadLetterSource,
        handle: Callable[[object], Awaitable[EventOutcome]],
        *,
        page_size: int = MAX_STATUS_DEAD_LETTER_BLOBS,
    ) -> None:
        self._source = source
        self._handle = handle
        self._page_size = page_size

    async def replay(
        self,
        *,
        vault: str | None = None,
        dry_run: bool = False,
        max_blobs: int = DEFAULT_REPLAY_BLOBS,
    ) -> ReplayReport:
        """Replay the pending blobs (of ``vault`` only, when given: a blob whose events are
        all of that vault), at most ``max_blobs`` listed.

        Raises:
            ServiceError: the container could not be listed (blobs already settled stay so).
        """
        report = ReplayReport(dry_run)
        wanted = vault.strip().lower() if vault else None
        listed = 0
        continuation: str | None = None
        while listed < max_blobs:
            page = await self._source.page(
                limit=min(self._page_size, max_blobs - listed), continuation=continuation
            )
            listed += max(page.listed, 1)
            for blob in page.blobs:
                if blob.error is not None:
                    report.malformed.append({"blob": blob.name, "error": blob.error})
                elif wanted is not None and set(blob.vaults) != {wanted}:
                    report.skipped += 1
                else:
                    await self._replay_blob(blob, report)
            continuation = page.continuation
            if continuation is None:
                break
        report.more = continuation is not None
        return report

    async def _replay_blob(self, blob: DeadLetterBlob, report: ReplayReport) -> None:
        entry: dict[str, Any] = {
            "blob": blob.name,
            "vaults": list(blob.vaults),
            "events": [event.event_id for event in blob.events],
        }
        if report.dry_run:
            report.replayed.append(entry)
            return
        outcomes: list[EventOutcome] = []
        try:
            for event in blob.events:
                outcomes.append(await self._handle(event.event))
        except KeywardError as error:
            # Transient (the handler raises only those): the blob stays for the next replay.
            _log.warning("dead letter %s not replayed: %s", blob.name, type(error).__name__)
            report.failed.append({**entry, "error": str(error)})
            return
        entry["outcomes"] = [outcome.status for outcome in outcomes]
        entry["jobs"] = [job for outcome in outcomes for job in outcome.jobs]
        refused = [outcome for outcome in outcomes if outcome.status == REJECTED]
        if refused:
            entry["reasons"] = [outcome.detail for outcome in refused]
            entry["moved_to"] = await self._source.settle(blob.name, REJECTED_PREFIX)
            report.rejected.append(entry)
        else:
            entry["moved_to"] = await self._source.settle(blob.name, REPLAYED_PREFIX)
            report.replayed.append(entry)
        _log.info("dead letter %s replayed: %s", blob.name, ",".join(entry["outcomes"]))
