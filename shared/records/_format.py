"""The record formats' names and rules, in one home every store adapter imports.

``docs/record-format.md`` is the prose reference; this module is what code uses: the Table
property names of format 1 (direct), format 2 (hierarchy), KEK rows and the mode row, the
SQLite column names, how a ``Format`` value is read (absent means 1; anything newer is
refused with a message that says to upgrade), and which partitions are reserved.

Pure: plain values in, plain values or ``InvalidInputError`` out.
"""

from __future__ import annotations

from typing import Final

from shared.crypto import WrapAlgorithm
from shared.errors import InvalidInputError
from shared.records._model import KNOWN_FORMATS, RecordFormat

# ---- Table property names (Azure Tables entity; PascalCase like Azure's own) --------------

PARTITION_KEY: Final = "PartitionKey"
ROW_KEY: Final = "RowKey"
#: Record format number (Int32). Absent = format 1: rows written before formats existed.
FORMAT: Final = "Format"
KEY_REF: Final = "KeyRef"
KEY_VERSION: Final = "KeyVersion"
KEY_ID: Final = "KeyId"
KEK_VERSION: Final = "KekVersion"
ALGORITHM: Final = "Algorithm"
WRAPPED_KEY: Final = "WrappedKey"
KCV: Final = "Kcv"
PREV_KEY_ID: Final = "PrevKeyId"
PREV_ALGORITHM: Final = "PrevAlgorithm"
PREV_WRAPPED_KEY: Final = "PrevWrappedKey"
PREV_KCV: Final = "PrevKcv"
UNREADABLE: Final = "Unreadable"
#: When the rewrap engine marked the row unreadable (Table only; SQLite keeps no time).
UNREADABLE_AT: Final = "UnreadableAt"
SEALED: Final = "Sealed"
CREATED_AT: Final = "CreatedAt"
UPDATED_AT: Final = "UpdatedAt"

#: Properties keyward writes on a format-1 (direct) record row, besides the keys: every one
#: the rewrap engine's Table store writes too (``dek_table/_entity.py``, ``_conditional.py``
#: name them from here). ``Prev*`` and ``Unreadable``/``UnreadableAt`` appear only after a
#: rewrap / a failed unwrap; ``Sealed`` only when data is stored.
FORMAT_1_PROPERTIES: Final = (
    KEY_REF, KEY_VERSION, KEY_ID, ALGORITHM, WRAPPED_KEY, KCV, PREV_KEY_ID, PREV_ALGORITHM,
    PREV_WRAPPED_KEY, PREV_KCV, UNREADABLE, UNREADABLE_AT, SEALED, CREATED_AT, UPDATED_AT,
)  # fmt: skip
#: Properties of a format-2 (hierarchy) record row, besides the keys. No ``KeyRef`` (so the
#: vault-key scans, a ``KeyRef`` range, never meet a format-2 row), no ``KeyId``, no ``Prev*``.
FORMAT_2_PROPERTIES: Final = (
    FORMAT, KEK_VERSION, ALGORITHM, WRAPPED_KEY, KCV, SEALED, CREATED_AT, UPDATED_AT,
)  # fmt: skip
#: What a conversion to format 2 must remove (a row never carries both formats' authority).
ONLY_FORMAT_1: Final = tuple(p for p in FORMAT_1_PROPERTIES if p not in FORMAT_2_PROPERTIES)
#: What a conversion back to format 1 must remove.
ONLY_FORMAT_2: Final = tuple(p for p in FORMAT_2_PROPERTIES if p not in FORMAT_1_PROPERTIES)
#: KEK rows use the format-1 layout exactly (PartitionKey = data partition, RowKey = KEK
#: version), so the KEK table is an ordinary DEK store to the rewrap engine.
KEK_PROPERTIES: Final = FORMAT_1_PROPERTIES

# ---- the mode row (Table: in the data table, in a reserved partition) ---------------------

#: Partitions starting with this are keyward's own; the API refuses them for records.
RESERVED_PARTITION_PREFIX: Final = "~"
MODE_PARTITION: Final = "~keyward"
MODE_ROW: Final = "mode"
#: The mode row's properties: the ``StoreMode`` value, when it last changed (datetime) and
#: the migration checkpoint (opaque JSON text, absent when no migration ran).
MODE: Final = "Mode"
CHANGED_AT: Final = "ChangedAt"
MIGRATION: Final = "Migration"

# SQLite: the schema (``deks`` with ``format``/``kek_version`` columns, ``keks``,
# ``keyward_meta``) lives in ``shared/stores/_sqlite_schema.py``, the one home of its names.

# ---- the rules -----------------------------------------------------------------------------

#: How a format-2 DEK is wrapped under its KEK (RFC 3394, deterministic: no nonce).
HIERARCHY_ALGORITHM: Final = WrapAlgorithm.A256KW
_KNOWN_LIST = ", ".join(str(f.value) for f in sorted(KNOWN_FORMATS))
#: Characters Azure Tables refuses in PartitionKey and RowKey; refused in SQLite too so a
#: record moves between stores unchanged.
FORBIDDEN_KEY_CHARACTERS: Final = frozenset("/\\#?")
#: Azure Tables' limit on PartitionKey and RowKey (1 KiB); kept under it in characters.
MAX_KEY_LENGTH: Final = 512


def parse_format(value: object) -> RecordFormat:
    """The format of a row from its ``Format`` value (``None`` = absent = format 1).

    Raises:
        InvalidInputError: a format this keyward does not read. A newer one says to upgrade:
            "record format 3 is newer than this keyward (reads 1, 2): upgrade keyward".
    """
    if value is None:
        return RecordFormat.DIRECT
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInputError(
            f"record format {value!r} is not a format number (this keyward reads {_KNOWN_LIST})"
        )
    if value in KNOWN_FORMATS:
        return RecordFormat(value)
    if value > max(KNOWN_FORMATS):
        raise InvalidInputError(
            f"record format {value} is newer than this keyward (reads {_KNOWN_LIST}): "
            "upgrade keyward"
        )
    raise InvalidInputError(
        f"record format {value} is not valid (this keyward reads {_KNOWN_LIST})"
    )


def is_reserved_partition(partition: str) -> bool:
    return partition.startswith(RESERVED_PARTITION_PREFIX)


def check_record_keys(partition: str, record_id: str) -> None:
    """Refuse a partition or record id no store can hold, before anything is done.

    Raises:
        InvalidInputError: empty, too long, holding ``/ \\ # ?`` or a control character, or
            a reserved partition (``~...``: keyward's own rows live there).
    """
    for name, value in (("partition", partition), ("record id", record_id)):
        if not isinstance(value, str) or not value:
            raise InvalidInputError(f"{name} must be non-empty text")
        if len(value) > MAX_KEY_LENGTH:
            raise InvalidInputError(f"{name} is longer than {MAX_KEY_LENGTH} characters")
        if FORBIDDEN_KEY_CHARACTERS & set(value) or any(
            ord(c) < 32 or ord(c) == 127 for c in value
        ):
            raise InvalidInputError(f"{name} {value!r} holds / \\ # ? or a control character")
    if is_reserved_partition(partition):
        raise InvalidInputError(
            f"partition {partition!r} is reserved: partitions starting with "
            f"{RESERVED_PARTITION_PREFIX!r} hold keyward's own rows"
        )


def record_ref(partition: str, record_id: str) -> str:
    """The ref a record's data is bound to (``seal``'s ``dek_id``): ``partition/record_id``."""
    return f"{partition}/{record_id}"
