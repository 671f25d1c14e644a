"""The bench's writer of hierarchy-mode rows: format-2 records and the KEK rows above them.

Seeding 1,000,000 records through the application API would cost a vault call per
partition and the envelope's bookkeeping per record; (h) measures the rotation, not the
writes, so the bench writes the rows the envelope writes directly, in bulk: the entity
layout is the product's (``docs/record-format.md``), the transport is the Table store's lean
insert transaction (``shared.adapters.dek_table._batch``). A KEK row is an ordinary format-1
DEK row of the KEK table (PartitionKey = data partition, RowKey = KEK version), inserted with
``TableDekStore.insert_batch``, so its layout is the product's by construction.
"""

from __future__ import annotations

import base64
import os
from datetime import UTC, datetime
from typing import Any

from shared.crypto import DataKey, LocalAesKeyWrapper, seal

#: ``Format`` of a hierarchy-mode row (``shared.records.RecordFormat.HIERARCHY``).
HIERARCHY_FORMAT = 2


def kek_version(now: datetime | None = None) -> str:
    """A KEK version id that sorts by creation: ``k`` + UTC time + ``-`` + 8 random hex."""
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%S%fZ")
    return f"k{stamp}-{os.urandom(4).hex()}"


def record_entity(
    kek: LocalAesKeyWrapper,
    version: str,
    partition: str,
    record_id: str,
    plaintext: bytes | None,
    created: datetime,
) -> dict[str, Any]:
    """A new format-2 record: a fresh DEK sealing ``plaintext``, wrapped by the partition's
    KEK (A256KW, 40 bytes); the DEK is wiped before this returns."""
    with DataKey.generate() as dek:
        entity: dict[str, Any] = {
            "PartitionKey": partition,
            "RowKey": record_id,
            "Format": HIERARCHY_FORMAT,
            "KekVersion": version,
            "Algorithm": kek.algorithm.value,
            "WrappedKey": base64.b64encode(kek.wrap(dek)).decode("ascii"),
            "Kcv": dek.kcv,
            "CreatedAt": created,
            "UpdatedAt": created,
        }
        if plaintext is not None:
            entity["Sealed"] = seal(dek, plaintext, dek_id=f"{partition}/{record_id}")
    return entity
