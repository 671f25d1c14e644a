"""Version ids of intermediate key-encryption keys (KEKs): the one home of their shape.

A KEK version id is ``k`` + the UTC creation time (``%Y%m%dT%H%M%S%fZ``, fixed width) + ``-``
+ 8 random hexadecimal characters, e.g. ``k20261206T154123123456Z-9f2c01ab``. Fixed width
makes string order creation order, so the newest version of a partition's KEK (its
*current* KEK) is the greatest id, in a Table partition (RowKey order) as in SQLite; the
random tail keeps two versions made in the same microsecond apart.

The partition's *first* KEK has a fixed id, :data:`FIRST_KEK_VERSION`, which sorts before
every dated one. Why: the first writer of a partition creates its KEK on first use, and
writers in different processes may race; with a fixed id the race is an insert conflict
(``ConflictError``) and the loser re-reads and uses the winner, so a partition gets exactly
one first KEK however many writers start at once. Later versions are made by the KEK
rotation job, which runs alone, so they carry their creation time.
"""

from __future__ import annotations

import re
import secrets
from datetime import UTC, datetime

from shared.errors import InvalidInputError

_TIME_FORMAT = "%Y%m%dT%H%M%S%fZ"
_SHAPE = re.compile(r"^k\d{8}T\d{12}Z-[0-9a-f]{8}$")
#: The fixed id of a partition's first KEK (sorts before every dated id).
FIRST_KEK_VERSION = "k00000000T000000000000Z-00000000"
#: Length of every KEK version id.
KEK_VERSION_LENGTH = len(FIRST_KEK_VERSION)


def new_kek_version(now: datetime, *, suffix: str | None = None) -> str:
    """A fresh version id dated ``now`` (converted to UTC; naive times are taken as UTC).

    ``suffix`` (8 lowercase hex characters) is for tests; by default it is random.

    Raises:
        InvalidInputError: ``suffix`` is not 8 lowercase hexadecimal characters.
    """
    when = now.replace(tzinfo=UTC) if now.tzinfo is None else now.astimezone(UTC)
    tail = secrets.token_hex(4) if suffix is None else suffix
    version = f"k{when.strftime(_TIME_FORMAT)}-{tail}"
    if not _SHAPE.match(version):
        raise InvalidInputError("a KEK version suffix is 8 lowercase hexadecimal characters")
    return version


def is_kek_version(text: str) -> bool:
    """Whether ``text`` has the shape of a KEK version id (the first one included)."""
    return bool(_SHAPE.match(text))


def require_kek_version(text: str) -> str:
    """``text`` if it is a KEK version id.

    Raises:
        InvalidInputError: it is not (names the value; version ids are not secret).
    """
    if not is_kek_version(text):
        raise InvalidInputError(f"{text!r} is not a KEK version id (k<UTC time>-<8 hex>)")
    return text


def kek_version_time(version: str) -> datetime | None:
    """When a version was created, from its id; ``None`` for the first KEK (fixed id).

    Raises:
        InvalidInputError: ``version`` is not a KEK version id.
    """
    require_kek_version(version)
    if version == FIRST_KEK_VERSION:
        return None
    return datetime.strptime(version[1:-9], _TIME_FORMAT).replace(tzinfo=UTC)


def newest_kek_version(versions: list[str] | tuple[str, ...]) -> str | None:
    """The current (newest) of ``versions``, or ``None`` when there is none."""
    return max(versions) if versions else None
