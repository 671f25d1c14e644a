"""Pieces every keyward-format store shares: key id splitting, continuations, record checks.

The Table, SQLite and in-memory stores keep the same fields (text base64 wrap, key id,
algorithm, KCV, previous wrap), so one function turns a stored row into a ``DekRecord``
and decides, per record, whether it is sound. Corrupted rows come back with ``problem`` set
instead of failing the scan, so one bad DEK never stops a job.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlsplit

from shared.crypto import WrapAlgorithm
from shared.errors import InvalidInputError
from shared.stores._protocol import MAX_LISTED_COPIES, DekRecord, ImmutableCopy, VersionCount

T = TypeVar("T")
#: Key Vault versions are 32 hexadecimal characters.
_VERSION = re.compile(r"^[0-9a-fA-F]{32}$")
_KCV = re.compile(r"^[0-9a-f]{16}$")
#: Reasons are operator text stored beside the DEK; bounded so a store row stays small.
MAX_REASON_LENGTH = 256
#: Largest page a caller may ask for; Table queries return at most 1,000 entities a page.
MAX_PAGE_SIZE = 1000
#: Service pages one ``scan`` call reads while they hold nothing of ours, before it returns
#: an empty page with a continuation (so a sparse scan still checkpoints).
MAX_LISTING_PAGES_PER_SCAN = 20
_CONTINUATION_FORMAT = 1


def split_key_id(key_id: str) -> tuple[str, str] | None:
    """``(key_ref, version)`` of a versioned key id, or ``None`` if it is not one.

    A structural parse (``https://host/keys/name/version``), not a trust decision: stores
    record what a key-encryption key wrote, and the engine checks the vault allow-list
    before any call, so emulator origins need no special case here.
    """
    parts = urlsplit(key_id)
    segments = parts.path.split("/")
    if parts.scheme.lower() != "https" or not parts.netloc or parts.query or parts.fragment:
        return None
    if len(segments) != 4 or segments[0] or segments[1] != "keys" or not segments[2]:
        return None
    if not _VERSION.match(segments[3]):
        return None
    key_ref = f"https://{parts.netloc.lower()}/keys/{segments[2]}"
    return key_ref, segments[3].lower()


def normalize_key_ref(key_ref: str) -> str:
    """The caller's unversioned id, tidied (lower-case scheme and host, no trailing slash).

    Keeps the key name's spelling: it is what keyward writes into new wraps.
    """
    parts = urlsplit(key_ref.strip().rstrip("/"))
    return f"{parts.scheme.lower()}://{parts.netloc.lower()}{parts.path}"


def fold_key_ref(key_ref: str) -> str:
    """The unversioned id for *matching*: every spelling of one key folds to one string.

    Key Vault names (vault host and key name) compare case-insensitively ("always compare
    them as case-insensitive strings", Azure's Key Vault documentation; ``KeyId.same_key``),
    so ``/keys/Orders-KEK`` and ``/keys/orders-kek`` are one key and a store that matched
    exact strings would hide DEKs written under another spelling from the rewrap job, the
    sweep and the retirement count. Names are ASCII, so ``lower()`` is the whole fold.
    """
    return normalize_key_ref(key_ref).lower()


def same_key(key_id: str, key_ref: str) -> bool:
    """Whether versioned ``key_id`` is a version of ``key_ref``, under any spelling of either."""
    split = split_key_id(key_id)
    return split is not None and split[0].lower() == fold_key_ref(key_ref)


async def aenumerate(items: AsyncIterator[T]) -> AsyncIterator[tuple[int, T]]:
    """``enumerate`` for async iterators."""
    index = 0
    async for item in items:
        yield index, item
        index += 1


def check_page_size(page_size: int) -> int:
    if not 1 <= page_size <= MAX_PAGE_SIZE:
        raise InvalidInputError(f"page_size must be 1..{MAX_PAGE_SIZE}, got {page_size}")
    return page_size


def encode_continuation(kind: str, token: Any) -> str:
    """An opaque, URL-safe continuation string carrying a store's native token."""
    payload = json.dumps({"v": _CONTINUATION_FORMAT, "k": kind, "t": token}, sort_keys=True)
    return base64.urlsafe_b64encode(payload.encode()).decode("ascii")


def decode_continuation(kind: str, continuation: str) -> Any:
    """The native token inside ``continuation``.

    Raises:
        InvalidInputError: not a continuation this kind of store issued.
    """
    try:
        data = json.loads(base64.urlsafe_b64decode(continuation.encode("ascii")))
    except (ValueError, binascii.Error, UnicodeError):
        raise InvalidInputError("continuation is not one keyward issued") from None
    if not isinstance(data, dict) or data.get("v") != _CONTINUATION_FORMAT:
        raise InvalidInputError("continuation has an unknown format")
    if data.get("k") != kind:
        raise InvalidInputError(f"continuation was issued by a {data.get('k')!r} store")
    return data.get("t")


def clean_reason(reason: str) -> str:
    """Printable ASCII, bounded: reasons travel in HTTP headers (blob metadata) and logs."""
    printable = "".join(ch if " " <= ch <= "~" else "?" for ch in reason)
    return printable[:MAX_REASON_LENGTH] or "unreadable"


def b64_encode(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def strict_b64_decode(text: str) -> bytes:
    """Standard base64, validated; raises InvalidInputError on anything else."""
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (ValueError, binascii.Error, UnicodeError):
        raise InvalidInputError("wrapped key is not valid base64") from None


@dataclass(frozen=True)
class StoredWrap:
    """The wrap fields of one stored row, as text, before validation."""

    ref: str
    partition: str
    etag: str
    key_ref: str
    key_id: str
    algorithm: str
    wrapped: str
    kcv: str | None
    previous_key_id: str | None = None


def to_record(row: StoredWrap) -> DekRecord:
    """Validate a stored row; a corrupted one comes back with ``problem`` and no wrap."""
    problem: str | None = None
    algorithm: WrapAlgorithm | None = None
    wrapped = b""
    split = split_key_id(row.key_id)
    try:
        algorithm = WrapAlgorithm.parse(row.algorithm)
        wrapped = strict_b64_decode(row.wrapped)
        if not wrapped:
            raise InvalidInputError("wrapped key is empty")
        if row.kcv is not None and not _KCV.match(row.kcv):
            raise InvalidInputError("kcv is not 16 lowercase hexadecimal characters")
        if split is None:
            raise InvalidInputError(f"key id {row.key_id!r} is not a versioned key id")
        if split[0].lower() != fold_key_ref(row.key_ref):
            raise InvalidInputError(f"key id {row.key_id!r} is foreign to key {row.key_ref!r}")
    except InvalidInputError as error:
        problem = str(error)
    return DekRecord(
        ref=row.ref,
        partition=row.partition,
        etag=row.etag,
        key_id=row.key_id,
        algorithm=algorithm,
        wrapped=wrapped if problem is None else b"",
        kcv=row.kcv,
        problem=problem,
        previous_key_id=row.previous_key_id or None,
    )


class VersionTally:
    """Counts DEKs per key version while streaming rows, holding one counter per version.

    Every spelling of a version of ``key_ref`` is counted under one id, the caller's
    spelling of the key plus the lower-case version, so a version's count is whole however
    the applications spelled its key id. Ids that are not versions of the key (corrupted
    rows) are counted as written, so they still show.
    """

    def __init__(self, key_ref: str) -> None:
        self._ref, self._fold = normalize_key_ref(key_ref), fold_key_ref(key_ref)
        self._counts: dict[str, list[int]] = {}
        self._copies: dict[str, list[ImmutableCopy]] = {}

    def canonical(self, key_id: str) -> str:
        """The id a version of the key is counted under (``key_id`` itself if foreign)."""
        split = split_key_id(key_id)
        if split is None or split[0].lower() != self._fold:
            return key_id
        return f"{self._ref}/{split[1]}"

    def _slot(self, key_id: str) -> list[int]:
        return self._counts.setdefault(self.canonical(key_id), [0, 0, 0, 0])

    def add(self, key_id: str, previous_key_id: str | None, unreadable: bool) -> None:
        self.count(key_id, current=1, unreadable=int(unreadable))
        if previous_key_id:
            self.count(previous_key_id, previous=1)

    def count(self, key_id: str, *, current: int = 0, previous: int = 0,
              unreadable: int = 0) -> None:  # fmt: skip
        """Add counts for ``key_id`` (any spelling)."""
        slot = self._slot(key_id)
        slot[0] += current
        slot[1] += previous
        slot[2] += unreadable

    def add_copy(self, copy: ImmutableCopy) -> None:
        """Count an immutable copy under its key id; name it while the list has room."""
        self._slot(copy.key_id)[3] += 1
        named = self._copies.setdefault(self.canonical(copy.key_id), [])
        if len(named) < MAX_LISTED_COPIES:
            named.append(copy)

    def result(self) -> list[VersionCount]:
        return [
            VersionCount(key_id=key_id, current=c, previous=p, unreadable=u, immutable=i,
                         immutable_copies=tuple(self._copies.get(key_id, ())))
            for key_id, (c, p, u, i) in sorted(self._counts.items())
        ]  # fmt: skip
