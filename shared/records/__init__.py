"""keyward's records: the application envelope in direct and hierarchy mode, pure of Azure.

Formats, the store's mode, intermediate key-encryption keys, the key cache, the envelope
service and the migration between modes live here; adapters implement ``_ports``.
"""

from shared.records._model import (
    KNOWN_FORMATS,
    ModeRecord,
    RecordFormat,
    RecordWrite,
    StoredKek,
    StoredRecord,
    StoreMode,
)
from shared.records._ports import (
    KekStore,
    ModeStore,
    PartitionPage,
    RecordPage,
    RecordStore,
    VaultKeys,
)

__all__ = [
    "KNOWN_FORMATS",
    "KekStore",
    "ModeRecord",
    "ModeStore",
    "PartitionPage",
    "RecordFormat",
    "RecordPage",
    "RecordStore",
    "RecordWrite",
    "StoreMode",
    "StoredKek",
    "StoredRecord",
    "VaultKeys",
]
