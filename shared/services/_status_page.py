"""One page of ``GET /api/status``: jobs, flags, rejected events, all bounded.

Jobs live per shard (``job:{shard}`` in the state table); a page reads the shards in their
configured order, each through ``JobStore.list_page`` (one bounded read), until it holds
``limit`` jobs or the shards end. The continuation says which shard and where in it: an opaque
token (base64 of JSON) the caller hands back. So a status call costs at most one read per
configured shard, whatever the number of jobs or DEKs. Beside the jobs, each page shows at
most :data:`MAX_STATUS_FLAGS` flag records per key-dependent kind (one query reading at most
one more, so the page says whether it left some out: ``<status key>_more``) and the newest
:data:`MAX_STATUS_REJECTIONS` rejected deliveries; never a verdict (a whole-store count).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from shared.errors import InvalidInputError, KeywardError
from shared.rewrap import MAX_JOB_PAGE, JobState, JobStore
from shared.services._ports import (
    EventLedgerPort,
    FlagsPage,
    KeyDependents,
    ReportsJob,
    ReportsMode,
)
from shared.services._render import job_json
from shared.services._store_jobs import running_job_json
from shared.stores import DekStore

#: Jobs per status page when the caller does not say.
DEFAULT_STATUS_LIMIT = 50
#: Flag records a status page shows per kind, at most (it reads one more, to say if more exist).
MAX_STATUS_FLAGS = 200
#: Rejected deliveries a status page shows, newest first.
MAX_STATUS_REJECTIONS = 50
#: Where a status page sends the reader for retirement verdicts (a whole-store count).
VERDICT_HINT = (
    'POST /api/verdict {"key": "<key id>"} answers 202 with a status URL; '
    "GET it until the operation has succeeded: its result is the key's verdict"
)
#: The token's format version.
_FORMAT = 1


@dataclass(frozen=True)
class StatusPage:
    states: Sequence[JobState]
    continuation: str | None


def check_limit(limit: int | None) -> int:
    """Raises: InvalidInputError: not 1..:data:`MAX_JOB_PAGE`."""
    if limit is None:
        return DEFAULT_STATUS_LIMIT
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_JOB_PAGE:
        raise InvalidInputError(f"limit must be an integer 1..{MAX_JOB_PAGE}")
    return limit


def encode_token(shard: str, token: str | None) -> str:
    payload = json.dumps({"v": _FORMAT, "shard": shard, "t": token}, sort_keys=True)
    return base64.urlsafe_b64encode(payload.encode()).decode("ascii")


def decode_token(continuation: str, shards: Sequence[str]) -> tuple[int, str | None]:
    """The shard index and that shard's own token inside a status continuation.

    Raises:
        InvalidInputError: not a token a status page issued (or for a shard not configured).
    """
    try:
        data: Any = json.loads(base64.urlsafe_b64decode(continuation.encode("ascii")))
    except (ValueError, binascii.Error, UnicodeError):
        raise InvalidInputError("continuation is not one keyward issued") from None
    if not isinstance(data, dict) or data.get("v") != _FORMAT or data.get("shard") not in shards:
        raise InvalidInputError("continuation is not one keyward issued (or its shard is gone)")
    token = data.get("t")
    if token is not None and not isinstance(token, str):
        raise InvalidInputError("continuation is not one keyward issued")
    return list(shards).index(data["shard"]), token


async def job_page(
    shards: Sequence[str],
    job_store: Callable[[str], JobStore],
    *,
    limit: int,
    continuation: str | None,
) -> StatusPage:
    """At most ``limit`` jobs from where ``continuation`` left off (at most one read per
    shard).

    Raises:
        InvalidInputError: a malformed continuation.
        ServiceError: a job store could not be read.
    """
    index, token = decode_token(continuation, shards) if continuation else (0, None)
    states: list[JobState] = []
    for position in range(index, len(shards)):
        shard = shards[position]
        page = await job_store(shard).list_page(limit=limit - len(states), continuation=token)
        states.extend(page.states)
        if page.continuation is not None:
            return StatusPage(states, encode_token(shard, page.continuation))
        token = None
        if len(states) >= limit:
            following = position + 1
            more = following < len(shards)
            return StatusPage(states, encode_token(shards[following], None) if more else None)
    return StatusPage(states, None)


#: A store that does not say its mode holds directly wrapped DEKs (blob, SQLite).
DEFAULT_STORE_MODE = "direct"
#: Shown when a store's mode row could not be read (the page still answers).
UNKNOWN_STORE_MODE = "unknown"


async def store_modes(stores: Mapping[str, DekStore]) -> dict[str, str]:
    """Each store's mode: its own word when it reports one (a cached row: O(1) per store)."""
    modes: dict[str, str] = {}
    for shard, store in stores.items():
        if not isinstance(store, ReportsMode):
            modes[shard] = DEFAULT_STORE_MODE
            continue
        try:
            modes[shard] = await store.store_mode()
        except KeywardError:
            modes[shard] = UNKNOWN_STORE_MODE
    return modes


async def store_jobs(stores: Mapping[str, DekStore]) -> dict[str, Any]:
    """Each store's running or blocked migration or KEK rotation, from its mode row's
    checkpoint (the same cached row as its mode: O(1) per store); ``None``: none."""
    jobs: dict[str, Any] = {}
    for shard, store in stores.items():
        if not isinstance(store, ReportsJob):
            continue
        try:
            jobs[shard] = running_job_json(await store.store_job())
        except KeywardError as error:
            jobs[shard] = {"error": str(error)}
    return jobs


async def status_json(
    shards: Sequence[str],
    job_store: Callable[[str], JobStore],
    dependents: KeyDependents,
    ledger: EventLedgerPort,
    *,
    limit: int | None,
    continuation: str | None,
    modes: Mapping[str, str] | None = None,
    store_jobs: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The status page's JSON: one page of jobs (newest update first), each kind's first
    flags and whether more exist, the newest rejections, how to ask for a verdict, the
    shards and each one's mode (``direct``, ``hierarchy``, a migration, ``intermediate-keys``),
    and each record store's running or blocked store job (kind, direction, phase, rows
    converted, blocked rows: ``shared.services._store_jobs.job_json``).

    Raises:
        InvalidInputError: ``limit`` out of 1..200, or a malformed ``continuation``.
        ServiceError: the state could not be read.
    """
    page = await job_page(shards, job_store, limit=check_limit(limit), continuation=continuation)
    jobs = sorted((job_json(s) for s in page.states),
                  key=lambda job: str(job["updated_at"]), reverse=True)  # fmt: skip
    return {
        "jobs": jobs,
        "continuation": page.continuation,
        **_flags_json(await dependents.status(MAX_STATUS_FLAGS)),
        "rejected_events": await ledger.recent_rejections(MAX_STATUS_REJECTIONS),
        "retirement": {
            "keys": sorted({state.key_ref for state in page.states}),
            "verdict": VERDICT_HINT,
        },
        "shards": list(shards),
        "modes": {shard: (modes or {}).get(shard, DEFAULT_STORE_MODE) for shard in shards},
        "store_jobs": dict(store_jobs or {}),
    }


def _flags_json(pages: Mapping[str, FlagsPage]) -> dict[str, Any]:
    """Each kind's flags under its status key, and ``<status key>_more``: ``true`` when the
    page left records out (the flags of every account: the dependents sweep's log)."""
    shown: dict[str, Any] = {}
    for key, page in pages.items():
        shown[key] = [dict(flag) for flag in page.flags]
        shown[f"{key}_more"] = page.more
    return shown
