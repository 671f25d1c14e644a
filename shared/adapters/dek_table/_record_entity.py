"""A record's Table entity in either format, and back (interim: moves to shared.records).

Format 1 is the DEK row of ``_entity``; format 2 carries ``Format``=2, ``KekVersion`` and
the locally wrapped DEK (A256KW, 40 bytes). A ``Format`` this keyward does not know is
refused (point read) or reported as the record's ``problem`` (scan), never guessed at.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from shared.adapters.dek_table._entity import to_stored
from shared.crypto import WrapAlgorithm
from shared.errors import InvalidInputError
from shared.records import KNOWN_FORMATS, RecordFormat, RecordWrite, StoredRecord
from shared.stores._common import b64_encode, split_key_id, strict_b64_decode

#: Properties only a format-1 (direct) row carries.
DIRECT_ONLY = ("KeyRef", "KeyVersion", "KeyId", "PrevKeyId", "PrevAlgorithm", "PrevWrappedKey",
               "PrevKcv", "Unreadable", "UnreadableAt")  # fmt: skip
#: Properties only a format-2 (hierarchy) row carries.
HIERARCHY_ONLY = ("Format", "KekVersion")
#: Properties both formats carry.
COMMON = ("Algorithm", "WrappedKey", "Kcv", "Sealed", "CreatedAt", "UpdatedAt")
#: The reserved partition prefix (keyward's own rows, e.g. the mode row).
RESERVED_PREFIX = "~"
_WRAPPED_KEK_BYTES = 40


def record_columns() -> tuple[str, ...]:
    """Every property a record's format defines (anything else is the application's)."""
    return (*DIRECT_ONLY, *HIERARCHY_ONLY, *COMMON)


def is_reserved_partition(partition: str) -> bool:
    return partition.startswith(RESERVED_PREFIX)


def format_properties(write: RecordWrite) -> dict[str, Any]:
    """The wrap properties ``write`` stores (no keys, no sealed data, no timestamps).

    Raises:
        InvalidInputError: the write is not consistent with its format.
    """
    if write.format is RecordFormat.DIRECT:
        split = split_key_id(write.key_id or "")
        if split is None or write.kek_version is not None:
            raise InvalidInputError(f"a direct record needs a versioned key id, not {write!r}")
        return {"KeyRef": split[0], "KeyVersion": split[1], "KeyId": write.key_id,
                "Algorithm": write.algorithm.value, "WrappedKey": b64_encode(write.wrapped),
                "Kcv": write.kcv}  # fmt: skip
    if not write.kek_version or write.key_id is not None:
        raise InvalidInputError(f"a hierarchy record needs a KEK version, not {write!r}")
    if write.algorithm is not WrapAlgorithm.A256KW:
        raise InvalidInputError("a hierarchy record is wrapped with A256KW")
    return {"Format": int(RecordFormat.HIERARCHY), "KekVersion": write.kek_version,
            "Algorithm": write.algorithm.value, "WrappedKey": b64_encode(write.wrapped),
            "Kcv": write.kcv}  # fmt: skip


def _format_of(row: Mapping[str, Any]) -> RecordFormat:
    value = row.get("Format")
    if value is None:
        return RecordFormat.DIRECT
    number = value if isinstance(value, int) and not isinstance(value, bool) else None
    if number is None or number not in KNOWN_FORMATS:
        known = ", ".join(str(int(f)) for f in sorted(KNOWN_FORMATS))
        raise InvalidInputError(
            f"record format {value!r} is newer than this keyward (reads {known}): upgrade keyward"
        )
    return RecordFormat(number)


def parse_record(row: Mapping[str, Any], *, strict: bool) -> StoredRecord:
    """The record an entity holds (``odata.etag`` carries its ETag).

    Raises:
        InvalidInputError: (``strict`` only) an unknown format or a corrupted row; a scan
            (``strict=False``) gets the record back with ``problem`` set instead.
    """
    partition, record_id = str(row.get("PartitionKey") or ""), str(row.get("RowKey") or "")
    etag = str(row.get("odata.etag") or "")
    sealed = row.get("Sealed")
    sealed = bytes(sealed) if isinstance(sealed, bytes | bytearray) else None
    try:
        record_format = _format_of(row)
        if record_format is RecordFormat.DIRECT:
            dek = to_stored(row)
            if dek.problem is not None:
                raise InvalidInputError(dek.problem)
            return StoredRecord(partition, record_id, etag, record_format, dek.algorithm,
                                dek.wrapped, dek.kcv or "", key_id=dek.key_id,
                                sealed=sealed)  # fmt: skip
        return _hierarchy(row, partition, record_id, etag, sealed)
    except InvalidInputError as error:
        if strict:
            raise InvalidInputError(f"record {partition}/{record_id}: {error}") from None
        return StoredRecord(partition, record_id, etag, RecordFormat.DIRECT, None, b"", "",
                            problem=str(error))  # fmt: skip


def _hierarchy(
    row: Mapping[str, Any], partition: str, record_id: str, etag: str, sealed: bytes | None
) -> StoredRecord:
    if row.get("Algorithm") != WrapAlgorithm.A256KW.value:
        raise InvalidInputError(
            f"a format-2 record is wrapped with A256KW, not {row.get('Algorithm')!r}"
        )
    wrapped = strict_b64_decode(str(row.get("WrappedKey") or ""))
    if len(wrapped) != _WRAPPED_KEK_BYTES:
        raise InvalidInputError(
            f"a format-2 wrapped DEK is {_WRAPPED_KEK_BYTES} bytes, not {len(wrapped)}"
        )
    kek_version = str(row.get("KekVersion") or "")
    if not kek_version:
        raise InvalidInputError("a format-2 record names no KEK version")
    return StoredRecord(partition, record_id, etag, RecordFormat.HIERARCHY, WrapAlgorithm.A256KW,
                        wrapped, str(row.get("Kcv") or ""), kek_version=kek_version,
                        sealed=sealed)  # fmt: skip
