"""What an application record is, in either of keyward's two modes, without plaintext.

A *record* is one application DEK row: the DEK wrapped either directly by a Key Vault key
version (``RecordFormat.DIRECT``, the row layout keyward has always used) or locally by the
partition's intermediate key-encryption key (``RecordFormat.HIERARCHY``), plus the data
sealed under the DEK. ``docs/record-format.md`` is the property-by-property reference.

A store's *mode* is recorded in the store itself (``ModeRecord``), not in each reader's
settings, so every writer and keyward's jobs agree on which format new rows take.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime

from shared.crypto import WrapAlgorithm


class RecordFormat(enum.IntEnum):
    """The record format version a row carries (``Format`` property; absent means 1)."""

    #: The DEK is wrapped by a Key Vault key version (``KeyId``); rotation costs one vault
    #: unwrap per DEK.
    DIRECT = 1
    #: The DEK is wrapped locally (A256KW) by the partition's intermediate key
    #: (``KekVersion``); only intermediate keys are wrapped by the Key Vault key.
    HIERARCHY = 2


#: Every format this keyward reads; a row with any other ``Format`` is refused clearly.
KNOWN_FORMATS = frozenset(RecordFormat)


class StoreMode(enum.StrEnum):
    """Which format a store's writers use, and which formats its rows may hold."""

    DIRECT = "direct"
    HIERARCHY = "hierarchy"
    #: A migration to hierarchy mode is under way: writers write format 2, rows of both
    #: formats exist.
    TO_HIERARCHY = "migrating-to-hierarchy"
    #: A migration back to direct mode is under way: writers write format 1, both exist.
    TO_DIRECT = "migrating-to-direct"

    @property
    def writes(self) -> RecordFormat:
        """The format a writer uses for a new record in this mode."""
        if self in (StoreMode.HIERARCHY, StoreMode.TO_HIERARCHY):
            return RecordFormat.HIERARCHY
        return RecordFormat.DIRECT

    @property
    def may_hold_direct_rows(self) -> bool:
        """Whether rows wrapped directly by the vault key may exist (scan and count them).

        Only a store whose migration to hierarchy mode ended with a verified count of zero
        direct rows is ``HIERARCHY``; everything else may hold them.
        """
        return self is not StoreMode.HIERARCHY


@dataclass(frozen=True)
class ModeRecord:
    """The store's mode row, as read: absent reads as ``DIRECT`` with an empty ETag.

    Attributes:
        mode: the store's mode.
        etag: the row's concurrency token ("" when the row does not exist yet).
        changed_at: when the mode last changed.
        migration: the migration job's checkpoint (opaque JSON, owned by
            ``shared.records._migration``); ``None`` when no migration has run.
    """

    mode: StoreMode = StoreMode.DIRECT
    etag: str = ""
    changed_at: datetime | None = None
    migration: str | None = None


@dataclass(frozen=True)
class RecordWrite:
    """The content of one record to write (insert or conditional replace).

    Exactly one of ``key_id`` (direct: the versioned Key Vault key id) and ``kek_version``
    (hierarchy: the partition's intermediate key version) is set, as ``format`` says.
    ``sealed`` is the data sealed under the DEK (``shared.crypto.seal``), ``None`` to keep
    whatever the row holds (replace) or to store none (insert).
    """

    partition: str
    record_id: str
    format: RecordFormat
    algorithm: WrapAlgorithm
    wrapped: bytes
    kcv: str
    key_id: str | None = None
    kek_version: str | None = None
    sealed: bytes | None = None

    @property
    def ref(self) -> str:
        return f"{self.partition}/{self.record_id}"

    def __repr__(self) -> str:
        return (
            f"RecordWrite(ref={self.ref!r}, format={self.format.value}, key_id={self.key_id!r}, "
            f"kek_version={self.kek_version!r}, wrapped=<{len(self.wrapped)} bytes>)"
        )


@dataclass(frozen=True)
class StoredRecord:
    """One record as read from its store (wrapped bytes only, never plaintext key material).

    ``problem`` is set (and the other fields may be empty) when a *scan* met a row it cannot
    use: an unknown format, a corrupted wrap. Point reads raise instead.
    """

    partition: str
    record_id: str
    etag: str
    format: RecordFormat
    algorithm: WrapAlgorithm | None
    wrapped: bytes
    kcv: str
    key_id: str | None = None
    kek_version: str | None = None
    sealed: bytes | None = None
    problem: str | None = None

    @property
    def ref(self) -> str:
        return f"{self.partition}/{self.record_id}"

    def __repr__(self) -> str:
        return (
            f"StoredRecord(ref={self.ref!r}, format={self.format.value}, key_id={self.key_id!r}, "
            f"kek_version={self.kek_version!r}, wrapped=<{len(self.wrapped)} bytes>, "
            f"problem={self.problem!r})"
        )


@dataclass(frozen=True)
class StoredKek:
    """One version of a partition's intermediate key-encryption key, as stored.

    KEK rows use the DEK row layout of format 1 (``KeyRef``/``KeyId``/``Algorithm``/
    ``WrappedKey``/``Kcv`` and the previous wrap), with PartitionKey = the data partition and
    RowKey = ``version``: so the KEK table *is* a ``shared.stores.DekStore`` to the rewrap
    engine, and a Key Vault rotation rewraps intermediate keys with the engine unchanged.
    """

    partition: str
    version: str
    etag: str
    key_id: str
    algorithm: WrapAlgorithm
    wrapped: bytes
    kcv: str
    created_at: datetime | None = None

    @property
    def ref(self) -> str:
        return f"{self.partition}/{self.version}"

    def __repr__(self) -> str:
        return (
            f"StoredKek(ref={self.ref!r}, key_id={self.key_id!r}, "
            f"wrapped=<{len(self.wrapped)} bytes>, kcv={self.kcv})"
        )
