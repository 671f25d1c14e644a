"""The ports the records domain works over; adapters implement them per store.

Table (``shared/adapters/dek_table``) and SQLite (``shared/stores``) implement
``RecordStore``, ``KekStore`` and ``ModeStore``; ``VaultKeys`` is the Key Vault adapter seen
from here. None of them ever sees plaintext key material except through ``DataKey``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from shared.crypto import AsyncKeyWrapper, WrapAlgorithm
from shared.errors import InvalidInputError
from shared.records._model import ModeRecord, RecordWrite, StoredKek, StoredRecord
from shared.stores import NewDek, WriteResult


@dataclass(frozen=True)
class RecordPage:
    records: Sequence[StoredRecord]
    #: Pass back for the next page; ``None`` when the scan is complete.
    continuation: str | None = None


@dataclass(frozen=True)
class PartitionPage:
    partitions: Sequence[str]
    continuation: str | None = None


class RecordStore(Protocol):
    """Application records (both formats) in one store."""

    @property
    def name(self) -> str: ...

    async def read_record(self, partition: str, record_id: str) -> StoredRecord | None:
        """The record, or ``None`` when absent.

        Raises:
            InvalidInputError: the row has a format this keyward does not know (names it and
                the formats it knows), or is corrupted.
        """
        ...

    async def insert_record(self, write: RecordWrite) -> StoredRecord:
        """Insert a new record.

        Raises:
            ConflictError: a record with that partition and id exists.
            InvalidInputError: a reserved or malformed partition or id.
        """
        ...

    async def replace_record(self, current: StoredRecord, write: RecordWrite) -> WriteResult:
        """Replace ``current``'s wrap (and format) with ``write``, if its ETag still holds.

        Properties the store does not model (an application's own columns) are kept; the
        properties of the other format are removed, so a row never carries both.
        """
        ...

    async def scan_records(
        self,
        *,
        partition: str | None = None,
        continuation: str | None = None,
        page_size: int = 1000,
    ) -> RecordPage:
        """Every record of both formats (of one partition, when given), in key order; rows
        that cannot be used come back with ``problem`` set, never skipped."""
        ...


class KekStore(Protocol):
    """Intermediate key-encryption keys, one partition's versions per data partition."""

    @property
    def name(self) -> str: ...

    async def list_keks(self, partition: str) -> Sequence[StoredKek]:
        """Every stored version of ``partition``'s intermediate key, newest first."""
        ...

    async def read_kek(self, partition: str, version: str) -> StoredKek | None: ...

    async def insert_kek(self, kek: NewDek) -> StoredKek:
        """Insert a new version (``kek.partition``, ``kek.dek_id`` = version).

        Raises:
            ConflictError: that version exists.
        """
        ...

    async def delete_kek(self, kek: StoredKek) -> WriteResult:
        """Delete a version no record references any more, if its ETag still holds."""
        ...

    async def kek_partitions(
        self, *, continuation: str | None = None, page_size: int = 1000
    ) -> PartitionPage:
        """The partitions that have an intermediate key, in order."""
        ...


class ModeStore(Protocol):
    """The store's mode row."""

    async def read_mode(self) -> ModeRecord:
        """The mode row; absent reads as ``ModeRecord()`` (direct, empty ETag)."""
        ...

    async def write_mode(self, record: ModeRecord) -> ModeRecord:
        """Write ``record`` if the row still has ``record.etag`` ("" = the row must not
        exist yet); returns the row as written (new ETag).

        Raises:
            ConflictError: someone else changed the row since it was read.
        """
        ...


class VaultKeys(Protocol):
    """The Key Vault key(s) an envelope wraps under, as the records domain sees them."""

    async def newest(self, key_ref: str) -> AsyncKeyWrapper:
        """A wrapper for the newest enabled version of ``key_ref`` (wrap is local with the
        public key for RSA; unwrap is a vault call)."""
        ...

    async def version(self, key_id: str, algorithm: WrapAlgorithm | None = None) -> AsyncKeyWrapper:
        """A wrapper for exactly ``key_id`` (a versioned key id), after the allow-list check,
        that unwraps with ``algorithm``: the one the row names (a format-1 row may be wrapped
        with RSA-OAEP, or A256KW under an oct-HSM key); ``None`` = RSA-OAEP-256.

        Raises:
            UnsupportedAlgorithmError: RSA1_5, unless the implementation was opened to read
                legacy RSA1_5 wraps (``shared.crypto.require_unwrap_allowed``).
        """
        ...


async def unwrapper_for(
    vault: VaultKeys, what: str, key_id: str, algorithm: WrapAlgorithm | None
) -> AsyncKeyWrapper:
    """The vault wrapper that unwraps ``what`` (a record's or KEK's ref): the version and the
    algorithm its row names. Every vault unwrap of a stored row asks here, so a wrapper that
    would unwrap with another algorithm is refused clearly instead of failing as tampering.

    Raises:
        UnsupportedAlgorithmError: RSA1_5 not allowed (see ``VaultKeys.version``).
        InvalidInputError: the wrapper unwraps another algorithm than the row's.
    """
    wrapper = await vault.version(key_id, algorithm)
    if algorithm is not None and wrapper.algorithm is not algorithm:
        raise InvalidInputError(
            f"{what} is wrapped with {algorithm.value}; the vault wrapper for {key_id} "
            f"unwraps {wrapper.algorithm.value}"
        )
    return wrapper
