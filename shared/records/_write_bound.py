"""How late a record write can land: the one home of ``MAX_WRITE_SECONDS`` and its parts.

Why: once the mode row says ``hierarchy`` the data shard answers no vault-key scan or
retirement count (O(1)), trusting that no format-1 row exists; a KEK rotation deletes an old
KEK version once a count finds nothing under it; a migration back to direct deletes the KEKs.
Each trusts a count. A writer that decided its format (or its current KEK) just before the
switch, and whose insert reaches the service *after* the count, would leave a row nobody
sees: retirement could then call a key version safe that still wraps a DEK. So every write
is bounded, and the jobs count only once every write decided before the switch has landed
or can never land.

The writer's side (``Envelope.encrypt``): a write whose format was decided from a mode row
read sent at ``t`` (in hierarchy mode, also a KEK listing sent at ``t'``) starts no later
than that decision's TTL after it (``KEYWARD_MODE_TTL``, ``KEYWARD_KEK_CACHE_SECONDS``;
decided again once if the vault work took longer) and is abandoned by the client
:data:`WRITE_DEADLINE_SECONDS` after the decision's TTL ran out (``asyncio`` deadline around
the insert, whatever the SDK does); a request the client abandoned is applied by the service
within :data:`SERVICE_GRACE_SECONDS` of that, or never. Hence every record write lands by

    decision read + TTL + MAX_WRITE_SECONDS,  MAX_WRITE_SECONDS = 30 + 30 = 60 s

and the jobs count (and flip, and delete KEKs) no earlier than ``switch + TTL +
MAX_WRITE_SECONDS``, the switch measured after its write returned (``Checkpoint.settle_until``).

The SDK's own settings (:data:`TABLE_WRITE_CLIENT_OPTIONS`, given to the application's and
the CLI's Table clients) keep an insert inside the deadline instead of being cut by it. From
azure-core 1.41 / azure-data-tables 12.7 (``AsyncTablesRetryPolicy.send``, the aiohttp
transport): each attempt is bounded by ``connection_timeout`` (aiohttp ``sock_connect``) plus
``read_timeout`` (aiohttp ``sock_read``: the response must start within it; a record is a few
KB, written at once); ``retry_total`` = 1 gives two attempts, the first retry without backoff
(``get_backoff_time`` is 0 after one error); the policy's absolute ``timeout`` (checked
before each attempt, and capping its connection timeout) is the deadline. So 2 x (5 + 10) =
30 s = :data:`WRITE_DEADLINE_SECONDS`. The SDK's defaults (300 s connect, 300 s read, 3 to 10
retries, 7 days absolute) would let an insert reach the service many minutes late. DNS, TLS
and a ``Retry-After`` sleep are not covered by those settings: the ``asyncio`` deadline is.

:data:`SERVICE_GRACE_SECONDS`: Azure Table storage applies or fails a request within its
server-side timeout of receiving it, at most 30 s for Table operations ("Setting timeouts for
Table service operations"); SQLite commits or gives up within its busy timeout
(``shared.stores._sqlite_db.BUSY_TIMEOUT_SECONDS``, 30 s) of starting, even when the awaiting
coroutine was cancelled (the write runs in a thread).

The assumption: every writer of the store is keyward's envelope, or honours the mode row,
its TTL and this bound the same way.
"""

from __future__ import annotations

from typing import Any, Final

#: aiohttp ``sock_connect`` of one attempt (azure-core ``connection_timeout``).
CONNECT_TIMEOUT_SECONDS: Final = 5.0
#: aiohttp ``sock_read`` of one attempt (azure-core ``read_timeout``).
READ_TIMEOUT_SECONDS: Final = 10.0
#: Retries after the first attempt (azure-core ``retry_total``).
WRITE_RETRIES: Final = 1
#: How long after its decision's TTL a write is abandoned by the client: the attempts'
#: bounds, 2 x (5 + 10) s, and the retry policy's absolute ``timeout``.
WRITE_DEADLINE_SECONDS: Final = (WRITE_RETRIES + 1) * (
    CONNECT_TIMEOUT_SECONDS + READ_TIMEOUT_SECONDS
)
#: How long the service may still apply a request the client abandoned (Table's server-side
#: timeout cap; SQLite's busy timeout).
SERVICE_GRACE_SECONDS: Final = 30.0
#: A decided write lands within this long after its decision's TTL ran out, or never.
MAX_WRITE_SECONDS: Final = WRITE_DEADLINE_SECONDS + SERVICE_GRACE_SECONDS

#: The azure-core keyword arguments of every Table client that writes records.
TABLE_WRITE_CLIENT_OPTIONS: Final[dict[str, Any]] = {
    "connection_timeout": CONNECT_TIMEOUT_SECONDS,
    "read_timeout": READ_TIMEOUT_SECONDS,
    "retry_total": WRITE_RETRIES,
    "timeout": WRITE_DEADLINE_SECONDS,
}
