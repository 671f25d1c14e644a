"""DEK stores: the protocol the rewrap engine uses, and its implementations."""

import importlib
from typing import TYPE_CHECKING, Any

from shared.stores._blob_kek import BlobKeyEncryptionKey, key_resolver
from shared.stores._memory import MemoryDekStore
from shared.stores._model import DekDetails, NewDek
from shared.stores._protocol import (
    DekRecord,
    DekStore,
    Rewrap,
    ScanPage,
    VersionCount,
    WriteOutcome,
    WriteResult,
)
from shared.stores._seed import new_dek, open_sealed, seed_deks
from shared.stores._sqlite import SqliteDekStore
from shared.stores._traffic import TrafficCounter, TrafficSnapshot

if TYPE_CHECKING:
    from shared.stores._blob import BlobDekStore
    from shared.stores._blob_seed import seed_blobs, upload_encrypted
    from shared.stores._table import TableDekStore

# Azure adapters load on first use, so importing the protocol (as the pure rewrap engine
# does) never imports ``azure.*``.
_AZURE_EXPORTS = {
    "TableDekStore": "shared.stores._table",
    "BlobDekStore": "shared.stores._blob",
    "seed_blobs": "shared.stores._blob_seed",
    "upload_encrypted": "shared.stores._blob_seed",
}


def __getattr__(name: str) -> Any:
    module = _AZURE_EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'shared.stores' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


__all__ = [
    "DekRecord",
    "DekStore",
    "Rewrap",
    "ScanPage",
    "VersionCount",
    "WriteOutcome",
    "WriteResult",
    "DekDetails",
    "MemoryDekStore",
    "NewDek",
    "SqliteDekStore",
    "TableDekStore",
    "new_dek",
    "open_sealed",
    "seed_deks",
    "BlobDekStore",
    "BlobKeyEncryptionKey",
    "TrafficCounter",
    "TrafficSnapshot",
    "key_resolver",
    "seed_blobs",
    "upload_encrypted",
]
