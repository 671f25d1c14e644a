"""keyward's records: the application envelope in direct and hierarchy mode, pure of Azure.

Formats, the store's mode, intermediate key-encryption keys, the key cache, the envelope
service and the migration between modes live here; adapters implement ``_ports``.
"""

from shared.records._cache import CacheStats, KeyCache
from shared.records._envelope import Envelope, RecordNotFoundError
from shared.records._kek_ids import (
    FIRST_KEK_VERSION,
    is_kek_version,
    kek_version_time,
    new_kek_version,
    newest_kek_version,
)
from shared.records._kek_ring import KekRing, OpenKek
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
from shared.records._settings import (
    DEFAULT_CACHE_SIZE,
    DEFAULT_DEK_CACHE_SECONDS,
    DEFAULT_KEK_CACHE_SECONDS,
    DEFAULT_MODE_TTL_SECONDS,
    EnvelopeSettings,
)
from shared.records._stats import EnvelopeStats

__all__ = [
    "DEFAULT_CACHE_SIZE",
    "DEFAULT_DEK_CACHE_SECONDS",
    "DEFAULT_KEK_CACHE_SECONDS",
    "DEFAULT_MODE_TTL_SECONDS",
    "FIRST_KEK_VERSION",
    "KNOWN_FORMATS",
    "CacheStats",
    "Envelope",
    "EnvelopeSettings",
    "EnvelopeStats",
    "KeyCache",
    "KekRing",
    "KekStore",
    "ModeRecord",
    "ModeStore",
    "OpenKek",
    "PartitionPage",
    "RecordFormat",
    "RecordNotFoundError",
    "RecordPage",
    "RecordStore",
    "RecordWrite",
    "StoreMode",
    "StoredKek",
    "StoredRecord",
    "VaultKeys",
    "is_kek_version",
    "kek_version_time",
    "new_kek_version",
    "newest_kek_version",
]
