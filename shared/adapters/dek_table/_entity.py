"""How a DEK maps onto a Table entity, and back.

Property names are PascalCase like Azure's own. ``KeyRef`` (the unversioned key id) and
``KeyVersion`` exist only so the service can filter a scan; ``KeyId`` stays the authority.
``KeyRef`` keeps the writer's spelling of the key name (lower-case scheme and host); the
store matches it case-insensitively (``_store`` says how).
Wrapped keys are standard base64 text so an operator can read them and a corrupted value
is still an entity the scan can report.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from shared.errors import InvalidInputError
from shared.records._format import (
    ALGORITHM,
    CREATED_AT,
    KCV,
    KEY_ID,
    KEY_REF,
    KEY_VERSION,
    PARTITION_KEY,
    PREV_ALGORITHM,
    PREV_KCV,
    PREV_KEY_ID,
    PREV_WRAPPED_KEY,
    ROW_KEY,
    SEALED,
    UNREADABLE,
    UPDATED_AT,
    WRAPPED_KEY,
)
from shared.stores._common import (
    StoredWrap,
    b64_encode,
    split_key_id,
    strict_b64_decode,
    to_record,
)
from shared.stores._model import DekDetails, NewDek, split_ref
from shared.stores._protocol import DekRecord, Rewrap

#: What a scan reads: the wrap and nothing else (no sealed payload).
SCAN_COLUMNS = [
    PARTITION_KEY, ROW_KEY, KEY_REF, KEY_ID, ALGORITHM, WRAPPED_KEY, KCV, PREV_KEY_ID,
]  # fmt: skip
#: What the retirement counts read.
COUNT_COLUMNS = [KEY_REF, KEY_ID, PREV_KEY_ID, UNREADABLE]
#: Azure Tables refuses these characters in PartitionKey and RowKey.
_FORBIDDEN_KEY_CHARACTERS = frozenset("/\\#?")


def now() -> datetime:
    return datetime.now(UTC)


def _text(value: Any) -> str:
    """A property as text; a wrong type becomes text the record check will reject."""
    if value is None:
        return ""
    return value if isinstance(value, str) else repr(value)


def etag_of(entity: Any) -> str:
    """The ETag of an SDK ``TableEntity`` (``metadata``) or of a raw query row (``odata.etag``):
    the one reading every Table port uses."""
    metadata = getattr(entity, "metadata", None) or {}
    return str(metadata.get("etag") or entity.get("odata.etag") or "")


def to_stored(entity: Mapping[str, Any]) -> DekRecord:
    partition = _text(entity.get(PARTITION_KEY))
    kcv = entity.get(KCV)
    return to_record(
        StoredWrap(
            ref=f"{partition}/{_text(entity.get(ROW_KEY))}",
            partition=partition,
            etag=etag_of(entity),
            key_ref=_text(entity.get(KEY_REF)),
            key_id=_text(entity.get(KEY_ID)),
            algorithm=_text(entity.get(ALGORITHM)),
            wrapped=_text(entity.get(WRAPPED_KEY)),
            kcv=_text(kcv) if kcv is not None else None,
            previous_key_id=_text(entity.get(PREV_KEY_ID)) or None,
        )
    )


def details(entity: Mapping[str, Any]) -> DekDetails:
    previous: bytes | None = None
    if entity.get(PREV_WRAPPED_KEY):
        try:
            previous = strict_b64_decode(_text(entity.get(PREV_WRAPPED_KEY)))
        except InvalidInputError:
            previous = None
    sealed = entity.get(SEALED)
    return DekDetails(
        record=to_stored(entity),
        previous_algorithm=entity.get(PREV_ALGORITHM) or None,
        previous_wrapped=previous,
        previous_kcv=entity.get(PREV_KCV) or None,
        unreadable=entity.get(UNREADABLE) or None,
        sealed=bytes(sealed) if isinstance(sealed, bytes | bytearray) else None,
    )


def holds_wrap(entity: Mapping[str, Any], rewrap: Rewrap) -> bool:
    """Whether the entity already carries exactly the wrap ``rewrap`` would write."""
    return (
        entity.get(KEY_ID) == rewrap.key_id
        and entity.get(ALGORITHM) == rewrap.algorithm.value
        and entity.get(WRAPPED_KEY) == b64_encode(rewrap.wrapped)
    )


def check_keys(partition: str, dek_id: str) -> None:
    for name, value in (("partition", partition), ("DEK id", dek_id)):
        if not value or _FORBIDDEN_KEY_CHARACTERS & set(value):
            raise InvalidInputError(f"{name} {value!r} is empty or holds one of / \\ # ?")


def new_entity(dek: NewDek) -> dict[str, Any]:
    check_keys(dek.partition, dek.dek_id)
    split = split_key_id(dek.key_id)
    if split is None:
        raise InvalidInputError(f"{dek.key_id!r} is not a versioned key id")
    created = now()
    entity: dict[str, Any] = {
        PARTITION_KEY: dek.partition,
        ROW_KEY: dek.dek_id,
        KEY_REF: split[0],
        KEY_VERSION: split[1],
        KEY_ID: dek.key_id,
        ALGORITHM: dek.algorithm.value,
        WRAPPED_KEY: b64_encode(dek.wrapped),
        KCV: dek.kcv,
        CREATED_AT: created,
        UPDATED_AT: created,
    }
    if dek.sealed is not None:
        entity[SEALED] = dek.sealed
    return entity


def rewrap_entity(rewrap: Rewrap) -> dict[str, Any]:
    """The MERGE body for a rewrap: new wrap in, the wrap that was read kept as previous."""
    record = rewrap.record
    partition, dek_id = split_ref(record.ref)
    split = split_key_id(rewrap.key_id)
    assert split is not None  # rewrap_refusal() has checked it
    assert record.algorithm is not None
    return {
        PARTITION_KEY: partition,
        ROW_KEY: dek_id,
        # The new wrap's spelling of the key, so KeyRef and KeyId agree again on a row an
        # application wrote under another spelling.
        KEY_REF: split[0],
        KEY_VERSION: split[1],
        KEY_ID: rewrap.key_id,
        ALGORITHM: rewrap.algorithm.value,
        WRAPPED_KEY: b64_encode(rewrap.wrapped),
        KCV: rewrap.kcv,
        PREV_KEY_ID: record.key_id,
        PREV_ALGORITHM: record.algorithm.value,
        PREV_WRAPPED_KEY: b64_encode(record.wrapped),
        PREV_KCV: record.kcv or "",
        # MERGE cannot remove a property; an empty reason means "readable" everywhere.
        UNREADABLE: "",
        UPDATED_AT: now(),
    }
