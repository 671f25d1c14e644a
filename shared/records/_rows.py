"""Stored rows (as plain values) into records, KEKs and modes: one check for every store.

The Table and SQLite adapters read their rows into plain text and numbers and hand them
here, so both stores accept and refuse exactly the same rows. A scan keeps a row it cannot
use, with ``problem`` set (one bad row never stops a job); a point read calls
:func:`require_usable`, which raises.
"""

from __future__ import annotations

import re
from datetime import datetime

from shared.crypto import KCV_SIZE
from shared.errors import InvalidInputError
from shared.records._format import HIERARCHY_ALGORITHM, check_record_keys, parse_format
from shared.records._kek_ids import is_kek_version
from shared.records._model import RecordFormat, RecordWrite, StoredKek, StoredRecord, StoreMode
from shared.stores._common import StoredWrap, split_key_id, strict_b64_decode, to_record

_KCV = re.compile(rf"^[0-9a-f]{{{2 * KCV_SIZE}}}$")
#: RFC 3394 output for a 32-byte DEK: the key plus one 8-byte integrity block.
HIERARCHY_WRAPPED_SIZE = 40


def record_from_row(
    partition: str,
    record_id: str,
    etag: str,
    *,
    format_value: object,
    key_ref: str | None,
    key_id: str | None,
    kek_version: str | None,
    algorithm: str | None,
    wrapped: str | None,
    kcv: str | None,
    sealed: bytes | None,
) -> StoredRecord:
    """The record a row holds; a row that cannot be used comes back with ``problem`` set.

    A row of an unknown format keeps ``format`` = 1 as a placeholder: only ``problem``
    (which names the format and says to upgrade) is meaningful then.
    """
    try:
        record_format = parse_format(format_value)
    except InvalidInputError as error:
        return StoredRecord(
            partition, record_id, etag, RecordFormat.DIRECT, None, b"", kcv or "",
            sealed=sealed, problem=str(error),
        )  # fmt: skip
    if record_format is RecordFormat.DIRECT:
        checked = to_record(
            StoredWrap(
                f"{partition}/{record_id}", partition, etag, key_ref or "", key_id or "",
                algorithm or "", wrapped or "", kcv,
            )
        )  # fmt: skip
        return StoredRecord(
            partition, record_id, etag, RecordFormat.DIRECT, checked.algorithm, checked.wrapped,
            kcv or "", key_id=key_id or None, sealed=sealed, problem=checked.problem,
        )  # fmt: skip
    problem, raw = _check_hierarchy(kek_version, algorithm, wrapped, kcv)
    return StoredRecord(
        partition, record_id, etag, RecordFormat.HIERARCHY,
        HIERARCHY_ALGORITHM if problem is None else None, raw, kcv or "",
        kek_version=kek_version or None, sealed=sealed, problem=problem,
    )  # fmt: skip


def _check_hierarchy(
    kek_version: str | None, algorithm: str | None, wrapped: str | None, kcv: str | None
) -> tuple[str | None, bytes]:
    try:
        if not kek_version or not is_kek_version(kek_version):
            raise InvalidInputError(f"format-2 row has no valid KekVersion ({kek_version!r})")
        if algorithm != HIERARCHY_ALGORITHM.value:
            raise InvalidInputError(
                f"format-2 row has algorithm {algorithm!r}; format 2 is {HIERARCHY_ALGORITHM}"
            )
        raw = strict_b64_decode(wrapped or "")
        if len(raw) != HIERARCHY_WRAPPED_SIZE:
            raise InvalidInputError(
                f"format-2 wrapped key is {len(raw)} bytes; A256KW of a DEK is "
                f"{HIERARCHY_WRAPPED_SIZE}"
            )
        if kcv is None or not _KCV.match(kcv):
            raise InvalidInputError("kcv is not 16 lowercase hexadecimal characters")
    except InvalidInputError as error:
        return str(error), b""
    return None, raw


def require_usable(record: StoredRecord) -> StoredRecord:
    """``record`` if it can be decrypted; what a point read returns.

    Raises:
        InvalidInputError: the row has an unknown format or is corrupted (names the record
            and the reason, never key material).
    """
    if record.problem is not None:
        raise InvalidInputError(f"record {record.ref} cannot be used: {record.problem}")
    return record


def kek_from_row(
    partition: str,
    version: str,
    etag: str,
    *,
    key_ref: str,
    key_id: str,
    algorithm: str,
    wrapped: str,
    kcv: str | None,
    created_at: datetime | None = None,
) -> StoredKek:
    """The KEK a row of the KEK table holds (the format-1 layout).

    Raises:
        InvalidInputError: the row is corrupted, or its RowKey is not a KEK version id; a
            KEK row is never silently skipped (every record under it depends on it).
    """
    checked = to_record(
        StoredWrap(f"{partition}/{version}", partition, etag, key_ref, key_id, algorithm,
                   wrapped, kcv)
    )  # fmt: skip
    problem = checked.problem
    if problem is None and not is_kek_version(version):
        problem = f"row key {version!r} is not a KEK version id"
    if problem is None and (kcv is None or not _KCV.match(kcv)):
        problem = "kcv is not 16 lowercase hexadecimal characters"
    if problem is not None or checked.algorithm is None:
        raise InvalidInputError(f"KEK {partition}/{version} cannot be used: {problem}")
    return StoredKek(
        partition, version, etag, key_id, checked.algorithm, checked.wrapped, kcv or "",
        created_at,
    )  # fmt: skip


def parse_mode(value: object) -> StoreMode:
    """The store mode a mode row names.

    Raises:
        InvalidInputError: a mode this keyward does not know (a newer keyward wrote it).
    """
    try:
        if not isinstance(value, str):
            raise ValueError(value)
        return StoreMode(value)
    except ValueError:
        known = ", ".join(m.value for m in StoreMode)
        raise InvalidInputError(
            f"store mode {value!r} is unknown to this keyward (knows {known}): upgrade keyward"
        ) from None


def format_value(record_format: RecordFormat) -> int | None:
    """The ``Format`` value a writer stores: none for format 1 (the layout from before
    formats, so every reader reads it), the number otherwise."""
    return None if record_format is RecordFormat.DIRECT else int(record_format)


def check_write(write: RecordWrite) -> RecordWrite:
    """``write`` if a store may write it: what each format requires, checked before any I/O.

    Raises:
        InvalidInputError: format 1 without a versioned ``key_id`` or with a
            ``kek_version``; format 2 without a KEK version id, with a ``key_id``, not
            A256KW, not a 40-byte wrap; a malformed KCV; reserved or malformed keys.
    """
    check_record_keys(write.partition, write.record_id)
    if not _KCV.match(write.kcv):
        raise InvalidInputError("kcv is not 16 lowercase hexadecimal characters")
    if write.format is RecordFormat.DIRECT:
        if write.kek_version is not None or not write.key_id or split_key_id(write.key_id) is None:
            raise InvalidInputError(
                f"a format-1 record needs a versioned key id and no KEK version ({write!r})"
            )
        return write
    if write.key_id is not None or not write.kek_version or not is_kek_version(write.kek_version):
        raise InvalidInputError(
            f"a format-2 record needs a KEK version id and no key id ({write!r})"
        )
    if write.algorithm is not HIERARCHY_ALGORITHM or len(write.wrapped) != HIERARCHY_WRAPPED_SIZE:
        raise InvalidInputError(
            f"a format-2 record is an A256KW wrap of {HIERARCHY_WRAPPED_SIZE} bytes ({write!r})"
        )
    return write
