"""The bench's writer of hierarchy-mode rows: format-2 records and the KEK rows above them.

Seeding 1,000,000 records through the application API would cost the envelope's
bookkeeping per record; (h) measures the rotation, not the writes, so the bench builds the
rows the envelope writes, in bulk: each entity comes from the product's one layout
(``shared.records._entities.new_record_entity``, pinned by ``docs/record-format.md``'s
test), the transport is the Table store's lean insert transaction
(``shared.adapters.dek_table._batch``). A KEK row is an ordinary format-1 DEK row of the
KEK table (PartitionKey = data partition, RowKey = KEK version), inserted with
``TableDekStore.insert_batch``; a partition's first KEK has the fixed first version id, as
the envelope gives it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from shared.crypto import DataKey, LocalAesKeyWrapper, seal
from shared.records import FIRST_KEK_VERSION, RecordFormat, RecordWrite
from shared.records._entities import new_record_entity
from shared.records._format import HIERARCHY_ALGORITHM

__all__ = ["FIRST_KEK_VERSION", "record_entity"]


def record_entity(
    kek: LocalAesKeyWrapper,
    version: str,
    partition: str,
    record_id: str,
    plaintext: bytes | None,
    created: datetime,
) -> dict[str, Any]:
    """A new format-2 record: a fresh DEK sealing ``plaintext`` (bound to the record's ref),
    wrapped by the partition's KEK (A256KW, 40 bytes); the DEK is wiped before this returns."""
    with DataKey.generate() as dek:
        ref = f"{partition}/{record_id}"
        write = RecordWrite(
            partition=partition,
            record_id=record_id,
            format=RecordFormat.HIERARCHY,
            algorithm=HIERARCHY_ALGORITHM,
            wrapped=kek.wrap(dek),
            kcv=dek.kcv,
            kek_version=version,
            sealed=seal(dek, plaintext, dek_id=ref) if plaintext is not None else None,
        )
    return new_record_entity(write, created)
