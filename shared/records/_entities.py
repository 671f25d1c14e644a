"""Table entities of records and of the mode row, as plain dicts: the format's one layout.

The Table adapter sends what these functions build and reads back through them, so the
layout ``docs/record-format.md`` documents (and ``tests/records/test_record_format_pinned``
pins byte for byte) has one home. Pure: dicts in, dicts out; the SDK stays in the adapter.

A replace (a migration converting a row) must keep an application's own properties and
must remove the other format's: Azure Tables' MERGE cannot remove a property, so the
adapter sends :func:`replaced_entity` as a full UPDATE (replace mode) under the row's ETag.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from shared.errors import InvalidInputError
from shared.records._format import (
    ALGORITHM,
    CHANGED_AT,
    CREATED_AT,
    FORMAT,
    KCV,
    KEK_VERSION,
    KEY_ID,
    KEY_REF,
    KEY_VERSION,
    MIGRATION,
    MODE,
    MODE_PARTITION,
    MODE_ROW,
    ONLY_FORMAT_1,
    ONLY_FORMAT_2,
    PARTITION_KEY,
    ROW_KEY,
    SEALED,
    UPDATED_AT,
    WRAPPED_KEY,
)
from shared.records._model import ModeRecord, RecordFormat, RecordWrite, StoredKek, StoredRecord
from shared.records._rows import (
    check_write,
    format_value,
    kek_from_row,
    parse_mode,
    record_from_row,
)
from shared.stores._common import b64_encode, split_key_id


def _text(value: Any) -> str | None:
    """A property as text; a wrong type becomes text the record check rejects."""
    if value is None:
        return None
    return value if isinstance(value, str) else repr(value)


def _wrap_properties(write: RecordWrite) -> dict[str, Any]:
    """The authority of ``write``'s format and its wrap (no keys, no timestamps)."""
    check_write(write)
    properties: dict[str, Any] = {}
    if write.format is RecordFormat.HIERARCHY:
        properties[FORMAT] = format_value(write.format)
        properties[KEK_VERSION] = write.kek_version
    else:
        assert write.key_id is not None  # check_write
        split = split_key_id(write.key_id)
        assert split is not None
        properties[KEY_REF], properties[KEY_VERSION] = split
        properties[KEY_ID] = write.key_id
    properties[ALGORITHM] = write.algorithm.value
    properties[WRAPPED_KEY] = b64_encode(write.wrapped)
    properties[KCV] = write.kcv
    return properties


def new_record_entity(write: RecordWrite, now: datetime) -> dict[str, Any]:
    """The entity that inserts ``write`` (format 1: today's DEK row; format 2: no KeyRef).

    Raises:
        InvalidInputError: see ``check_write``.
    """
    entity: dict[str, Any] = {PARTITION_KEY: write.partition, ROW_KEY: write.record_id}
    entity |= _wrap_properties(write)
    if write.sealed is not None:
        entity[SEALED] = write.sealed
    entity[CREATED_AT] = now
    entity[UPDATED_AT] = now
    return entity


def replaced_entity(
    current: Mapping[str, Any], write: RecordWrite, now: datetime
) -> dict[str, Any]:
    """The full entity that replaces ``current`` with ``write``'s wrap: the application's
    own properties and ``CreatedAt`` kept, the other format's (``Prev*``, ``Unreadable``
    included) removed, ``Sealed`` kept unless ``write`` brings new data.

    Raises:
        InvalidInputError: ``write`` is for another row, or see ``check_write``.
    """
    if (current.get(PARTITION_KEY), current.get(ROW_KEY)) != (write.partition, write.record_id):
        raise InvalidInputError(f"write {write.ref} does not replace this row")
    drop = set(ONLY_FORMAT_1) | set(ONLY_FORMAT_2)
    entity = {
        name: value
        for name, value in current.items()
        if name not in drop and not name.startswith("odata.") and name != "Timestamp"
    }
    entity |= _wrap_properties(write)
    if write.sealed is not None:
        entity[SEALED] = write.sealed
    entity[UPDATED_AT] = now
    return entity


def record_from_entity(entity: Mapping[str, Any], etag: str) -> StoredRecord:
    """The record an entity holds; ``problem`` set when it cannot be used (see ``_rows``)."""
    sealed = entity.get(SEALED)
    return record_from_row(
        _text(entity.get(PARTITION_KEY)) or "", _text(entity.get(ROW_KEY)) or "", etag,
        format_value=entity.get(FORMAT), key_ref=_text(entity.get(KEY_REF)),
        key_id=_text(entity.get(KEY_ID)), kek_version=_text(entity.get(KEK_VERSION)),
        algorithm=_text(entity.get(ALGORITHM)), wrapped=_text(entity.get(WRAPPED_KEY)),
        kcv=_text(entity.get(KCV)),
        sealed=bytes(sealed) if isinstance(sealed, bytes | bytearray) else None,
    )  # fmt: skip


def kek_from_entity(entity: Mapping[str, Any], etag: str) -> StoredKek:
    """The KEK a KEK-table entity holds.

    Raises:
        InvalidInputError: a corrupted KEK row (never skipped silently).
    """
    created = entity.get(CREATED_AT)
    return kek_from_row(
        _text(entity.get(PARTITION_KEY)) or "", _text(entity.get(ROW_KEY)) or "", etag,
        key_ref=_text(entity.get(KEY_REF)) or "", key_id=_text(entity.get(KEY_ID)) or "",
        algorithm=_text(entity.get(ALGORITHM)) or "", wrapped=_text(entity.get(WRAPPED_KEY)) or "",
        kcv=_text(entity.get(KCV)), created_at=created if isinstance(created, datetime) else None,
    )  # fmt: skip


def mode_entity(record: ModeRecord, now: datetime) -> dict[str, Any]:
    """The mode row's entity (``~keyward``/``mode`` in the data table)."""
    entity: dict[str, Any] = {
        PARTITION_KEY: MODE_PARTITION,
        ROW_KEY: MODE_ROW,
        MODE: record.mode.value,
        CHANGED_AT: record.changed_at or now,
    }
    if record.migration is not None:
        entity[MIGRATION] = record.migration
    return entity


def mode_from_entity(entity: Mapping[str, Any] | None, etag: str) -> ModeRecord:
    """The mode an entity holds; ``None`` (no row) reads as direct with an empty ETag.

    Raises:
        InvalidInputError: a mode this keyward does not know.
    """
    if entity is None:
        return ModeRecord()
    changed = entity.get(CHANGED_AT)
    return ModeRecord(
        parse_mode(entity.get(MODE)), etag, changed if isinstance(changed, datetime) else None,
        _text(entity.get(MIGRATION)),
    )  # fmt: skip
