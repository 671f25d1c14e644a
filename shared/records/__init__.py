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

# The store jobs (migration between modes, KEK rotation): steps here, driven by
# ``shared.services.migration``.
from shared.records._kek_rotation import KekRotation
from shared.records._migration import Migration
from shared.records._migration_job import DEFAULT_JOB_PAGE_SIZE, JobParts, StoreJob
from shared.records._migration_probe import JOB_POINTS, JobProbe, no_probe
from shared.records._migration_rows import DEFAULT_JOB_WORKERS
from shared.records._migration_state import (
    Checkpoint,
    JobBusyError,
    JobKind,
    Phase,
    Tally,
    read_checkpoint,
)
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
from shared.records._write_bound import (
    MAX_WRITE_SECONDS,
    TABLE_WRITE_CLIENT_OPTIONS,
    WRITE_DEADLINE_SECONDS,
)

__all__ = [
    "DEFAULT_JOB_PAGE_SIZE",
    "DEFAULT_JOB_WORKERS",
    "JOB_POINTS",
    "Checkpoint",
    "JobBusyError",
    "JobKind",
    "JobParts",
    "JobProbe",
    "KekRotation",
    "Migration",
    "Phase",
    "StoreJob",
    "Tally",
    "no_probe",
    "read_checkpoint",
    "DEFAULT_CACHE_SIZE",
    "DEFAULT_DEK_CACHE_SECONDS",
    "DEFAULT_KEK_CACHE_SECONDS",
    "DEFAULT_MODE_TTL_SECONDS",
    "MAX_WRITE_SECONDS",
    "TABLE_WRITE_CLIENT_OPTIONS",
    "WRITE_DEADLINE_SECONDS",
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
