"""The Azure Table DEK store (azure-data-tables): keyward's own envelope records.

``TableDekStore`` is the rewrap engine's store; ``TableRecordStore``, ``TableKekStore`` and
``TableModeStore`` are the application envelope's ports (``shared.records``) on the same
tables; ``ModeAwareTableStore`` and ``KekTableShard`` are the shards the Function App and the
CLI rotate.
"""

from shared.adapters.dek_table._kek_age import kek_older_than
from shared.adapters.dek_table._keks import TableKekStore
from shared.adapters.dek_table._mode import TableModeStore
from shared.adapters.dek_table._records import TableRecordStore
from shared.adapters.dek_table._shards import KEK_SHARD_MODE, KekTableShard, ModeAwareTableStore
from shared.adapters.dek_table._store import TableDekStore

__all__ = [
    "KEK_SHARD_MODE",
    "KekTableShard",
    "ModeAwareTableStore",
    "TableDekStore",
    "TableKekStore",
    "TableModeStore",
    "TableRecordStore",
    "kek_older_than",
]
