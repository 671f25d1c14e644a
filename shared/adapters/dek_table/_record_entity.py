"""A record's Table entity in either format, and back.

The property names, which format owns which, how ``Format`` is read and which partitions are
reserved are ``shared.records._format``'s, and what a row must hold is
``shared.records._rows``' (one home for Table and SQLite, so both accept and refuse the same
rows); this module only maps them onto entities.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from shared.records import RecordFormat, RecordWrite, StoredRecord
from shared.records import _format as f
from shared.records._rows import check_write, format_value, record_from_row, require_usable
from shared.stores._common import b64_encode, split_key_id


def record_columns() -> tuple[str, ...]:
    """Every property a record's formats define (anything else is the application's)."""
    return tuple(dict.fromkeys((*f.FORMAT_1_PROPERTIES, *f.FORMAT_2_PROPERTIES, "UnreadableAt")))


def format_properties(write: RecordWrite) -> dict[str, Any]:
    """The wrap properties ``write`` stores (no keys, no sealed data, no timestamps).

    Raises:
        InvalidInputError: the write is not what its format requires (``check_write``).
    """
    check_write(write)
    if write.format is RecordFormat.DIRECT:
        split = split_key_id(write.key_id or "")
        assert split is not None  # check_write has checked it
        return {f.KEY_REF: split[0], f.KEY_VERSION: split[1], f.KEY_ID: write.key_id,
                f.ALGORITHM: write.algorithm.value, f.WRAPPED_KEY: b64_encode(write.wrapped),
                f.KCV: write.kcv}  # fmt: skip
    return {f.FORMAT: format_value(write.format), f.KEK_VERSION: write.kek_version,
            f.ALGORITHM: write.algorithm.value, f.WRAPPED_KEY: b64_encode(write.wrapped),
            f.KCV: write.kcv}  # fmt: skip


def parse_record(row: Mapping[str, Any], *, strict: bool) -> StoredRecord:
    """The record an entity holds (``odata.etag`` carries its ETag).

    Raises:
        InvalidInputError: (``strict`` only) an unknown format or a corrupted row; a scan
            (``strict=False``) gets the record back with ``problem`` set instead.
    """
    sealed = row.get(f.SEALED)
    record = record_from_row(
        _text(row.get(f.PARTITION_KEY)) or "", _text(row.get(f.ROW_KEY)) or "",
        str(row.get("odata.etag") or ""),
        format_value=row.get(f.FORMAT),
        key_ref=_text(row.get(f.KEY_REF)),
        key_id=_text(row.get(f.KEY_ID)),
        kek_version=_text(row.get(f.KEK_VERSION)),
        algorithm=_text(row.get(f.ALGORITHM)),
        wrapped=_text(row.get(f.WRAPPED_KEY)),
        kcv=_text(row.get(f.KCV)),
        sealed=bytes(sealed) if isinstance(sealed, bytes | bytearray) else None,
    )  # fmt: skip
    return require_usable(record) if strict else record


def _text(value: Any) -> str | None:
    """A property as text (a wrong type becomes text the row checks refuse)."""
    if value is None:
        return None
    return value if isinstance(value, str) else repr(value)
