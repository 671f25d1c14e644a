"""A record's Table entity in either format, and back.

The property names, which format owns which, how ``Format`` is read and which partitions are
reserved are ``shared.records._format``'s (one home for Table and SQLite); this module only
maps them onto entities. Format 1 is the DEK row of ``_entity`` (its validation is reused);
format 2 carries ``Format``=2, ``KekVersion`` and the locally wrapped DEK (A256KW, 40 bytes).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from shared.adapters.dek_table._entity import to_stored
from shared.errors import InvalidInputError
from shared.records import RecordFormat, RecordWrite, StoredRecord
from shared.records import _format as f
from shared.stores._common import b64_encode, split_key_id, strict_b64_decode

#: A 32-byte DEK wrapped with RFC 3394 AES key wrap.
_WRAPPED_DEK_BYTES = 40


def record_columns() -> tuple[str, ...]:
    """Every property a record's formats define (anything else is the application's)."""
    return tuple(dict.fromkeys((*f.FORMAT_1_PROPERTIES, *f.FORMAT_2_PROPERTIES, "UnreadableAt")))


def format_properties(write: RecordWrite) -> dict[str, Any]:
    """The wrap properties ``write`` stores (no keys, no sealed data, no timestamps).

    Raises:
        InvalidInputError: the write is not consistent with its format.
    """
    if write.format is RecordFormat.DIRECT:
        split = split_key_id(write.key_id or "")
        if split is None or write.kek_version is not None:
            raise InvalidInputError(f"a direct record needs a versioned key id, not {write!r}")
        return {f.KEY_REF: split[0], f.KEY_VERSION: split[1], f.KEY_ID: write.key_id,
                f.ALGORITHM: write.algorithm.value, f.WRAPPED_KEY: b64_encode(write.wrapped),
                f.KCV: write.kcv}  # fmt: skip
    if not write.kek_version or write.key_id is not None:
        raise InvalidInputError(f"a hierarchy record needs a KEK version, not {write!r}")
    if write.algorithm is not f.HIERARCHY_ALGORITHM:
        raise InvalidInputError(f"a hierarchy record is wrapped with {f.HIERARCHY_ALGORITHM}")
    return {f.FORMAT: int(RecordFormat.HIERARCHY), f.KEK_VERSION: write.kek_version,
            f.ALGORITHM: write.algorithm.value, f.WRAPPED_KEY: b64_encode(write.wrapped),
            f.KCV: write.kcv}  # fmt: skip


def parse_record(row: Mapping[str, Any], *, strict: bool) -> StoredRecord:
    """The record an entity holds (``odata.etag`` carries its ETag).

    Raises:
        InvalidInputError: (``strict`` only) an unknown format or a corrupted row; a scan
            (``strict=False``) gets the record back with ``problem`` set instead.
    """
    partition, record_id = str(row.get(f.PARTITION_KEY) or ""), str(row.get(f.ROW_KEY) or "")
    etag = str(row.get("odata.etag") or "")
    sealed = row.get(f.SEALED)
    sealed = bytes(sealed) if isinstance(sealed, bytes | bytearray) else None
    try:
        record_format = f.parse_format(row.get(f.FORMAT))
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
    algorithm = row.get(f.ALGORITHM)
    if algorithm != f.HIERARCHY_ALGORITHM.value:
        raise InvalidInputError(f"a format-2 record is wrapped with A256KW, not {algorithm!r}")
    wrapped = strict_b64_decode(str(row.get(f.WRAPPED_KEY) or ""))
    if len(wrapped) != _WRAPPED_DEK_BYTES:
        raise InvalidInputError(f"a format-2 wrapped DEK is 40 bytes, not {len(wrapped)}")
    kek_version = str(row.get(f.KEK_VERSION) or "")
    if not kek_version:
        raise InvalidInputError("a format-2 record names no KEK version")
    return StoredRecord(partition, record_id, etag, RecordFormat.HIERARCHY,
                        f.HIERARCHY_ALGORITHM, wrapped, str(row.get(f.KCV) or ""),
                        kek_version=kek_version, sealed=sealed)  # fmt: skip
