"""DEK stores: the protocol the rewrap engine uses, its record model and the SQLite store.

Pure and stdlib only: the Azure Table and Blob stores live in ``shared.adapters.dek_table``
and ``shared.adapters.dek_blob``; which kinds exist is the registry's business
(``shared.composition``).
"""

from shared.stores._model import DekDetails, NewDek
from shared.stores._paging import (
    all_version_counts,
    counts_from_json,
    counts_to_json,
    forget_all_previous,
    merge_counts,
    total_records,
)
from shared.stores._protocol import (
    DEFAULT_COUNT_PAGE_SIZE,
    DEFAULT_PAGE_SIZE,
    MAX_LISTED_COPIES,
    CountPage,
    DekRecord,
    DekStore,
    ForgetPage,
    ImmutableCopy,
    KeepsPreviousWraps,
    Rewrap,
    ScanPage,
    VersionCount,
    WriteOutcome,
    WriteResult,
)
from shared.stores._sqlite import SqliteDekStore
from shared.stores._sqlite_db import SqliteDatabase

__all__ = [
    "DEFAULT_COUNT_PAGE_SIZE",
    "DEFAULT_PAGE_SIZE",
    "MAX_LISTED_COPIES",
    "CountPage",
    "DekRecord",
    "DekStore",
    "ForgetPage",
    "ImmutableCopy",
    "KeepsPreviousWraps",
    "all_version_counts",
    "counts_from_json",
    "counts_to_json",
    "forget_all_previous",
    "merge_counts",
    "total_records",
    "Rewrap",
    "ScanPage",
    "VersionCount",
    "WriteOutcome",
    "WriteResult",
    "DekDetails",
    "NewDek",
    "SqliteDatabase",
    "SqliteDekStore",
]
