"""One page of ``GET /api/status``'s jobs, across the shards' job stores. Bounded.

Jobs live per shard (``job:{shard}`` in the state table); a page reads the shards in their
configured order, each through ``JobStore.list_page`` (one bounded read), until it holds
``limit`` jobs or the shards end. The continuation says which shard and where in it: an opaque
token (base64 of JSON) the caller hands back. So a status call costs at most one read per
configured shard, whatever the number of jobs or DEKs.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from shared.errors import InvalidInputError
from shared.rewrap import MAX_JOB_PAGE, JobState, JobStore

#: Jobs per status page when the caller does not say.
DEFAULT_STATUS_LIMIT = 50
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
