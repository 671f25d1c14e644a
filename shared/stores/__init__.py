"""DEK stores: the protocol the rewrap engine uses, and its implementations."""

from shared.stores._protocol import (
    DekRecord,
    DekStore,
    Rewrap,
    ScanPage,
    VersionCount,
    WriteOutcome,
    WriteResult,
)

__all__ = [
    "DekRecord",
    "DekStore",
    "Rewrap",
    "ScanPage",
    "VersionCount",
    "WriteOutcome",
    "WriteResult",
]
