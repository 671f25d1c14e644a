"""keyward's own envelope encryption record writer: new DEKs, sealed data, batch inserts.

Used by the demo and the benchmark to create 10,000 to 100,000 DEKs quickly: each DEK is
generated from the OS CSPRNG, seals its record's data (``shared.crypto.seal``, bound to the
DEK's ref), is wrapped by the injected key-encryption key (an RSA wrap needs only the public
key, so this is local CPU work), then wiped. Inserts go in batches (Table: transactions of
100 per partition, several in flight), so the store, not the loop, sets the pace.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

from shared.crypto import DataKey, KeyWrapper, open_envelope, seal
from shared.errors import IntegrityError, InvalidInputError
from shared.stores._model import DekDetails, NewDek

#: DEKs generated and inserted per round; bounds memory whatever the total count.
SEED_BATCH_SIZE = 2000
#: Upper bound on one seeding run (the benchmark's largest case is 100,000).
MAX_SEED_COUNT = 10_000_000


class DekWriter(Protocol):
    """Stores that accept new DEKs (Table, SQLite, memory)."""

    async def insert_batch(self, deks: Sequence[NewDek]) -> None: ...


def new_dek(
    wrapper: KeyWrapper, partition: str, dek_id: str, plaintext: bytes | None = None
) -> NewDek:
    """Generate a DEK, seal ``plaintext`` under it (if given), wrap it; the DEK is wiped."""
    with DataKey.generate() as dek:
        sealed = None
        if plaintext is not None:
            sealed = seal(dek, plaintext, dek_id=f"{partition}/{dek_id}")
        return NewDek(
            partition=partition,
            dek_id=dek_id,
            key_id=wrapper.key_id,
            algorithm=wrapper.algorithm,
            wrapped=wrapper.wrap(dek),
            kcv=dek.kcv,
            sealed=sealed,
        )


def seed_layout(index: int, partitions: int, prefix: str) -> tuple[str, str]:
    """(partition, dek id) of the ``index``-th seeded DEK: round-robin over partitions."""
    return f"{prefix}p{index % partitions:04d}", f"{prefix}d{index:09d}"


async def seed_deks(
    store: DekWriter,
    wrapper: KeyWrapper,
    count: int,
    *,
    partitions: int = 16,
    prefix: str = "",
    plaintext: Callable[[int], bytes | None] | None = None,
    start: int = 0,
) -> int:
    """Insert ``count`` new DEKs wrapped by ``wrapper``; returns how many were inserted.

    Args:
        store: where to insert.
        wrapper: the key-encryption key (its public half suffices for RSA).
        count: how many DEKs.
        partitions: spread over this many partitions (Table transactions are per partition).
        prefix: prepended to partition and DEK ids, to seed several sets side by side.
        plaintext: data to seal under DEK number ``i`` (``None``: no sealed payload).
        start: index of the first DEK (resume or extend a seeded set).

    Raises:
        InvalidInputError: a count or partition number out of bounds.
        ConflictError: a DEK id already exists.
    """
    if not 0 <= count <= MAX_SEED_COUNT or partitions < 1:
        raise InvalidInputError(f"count must be 0..{MAX_SEED_COUNT} and partitions at least 1")
    for first in range(start, start + count, SEED_BATCH_SIZE):
        batch = []
        for index in range(first, min(first + SEED_BATCH_SIZE, start + count)):
            partition, dek_id = seed_layout(index, partitions, prefix)
            data = plaintext(index) if plaintext else None
            batch.append(new_dek(wrapper, partition, dek_id, data))
        await store.insert_batch(batch)
    return count


def open_sealed(details: DekDetails, wrapper: KeyWrapper) -> bytes:
    """Unwrap a stored DEK with ``wrapper`` and open its sealed payload.

    Raises:
        InvalidInputError: the DEK has no sealed payload, or ``wrapper`` is not its key.
        IntegrityError: the unwrap, the KCV or the envelope does not verify.
    """
    record = details.record
    if details.sealed is None:
        raise InvalidInputError(f"{record.ref} has no sealed payload")
    if record.key_id != wrapper.key_id:
        raise InvalidInputError(f"{record.ref} is wrapped by {record.key_id}, not {wrapper.key_id}")
    with wrapper.unwrap(record.wrapped) as dek:
        if record.kcv is not None and dek.kcv != record.kcv:
            raise IntegrityError(f"{record.ref}: unwrapped DEK does not match its KCV")
        return open_envelope(dek, details.sealed, dek_id=record.ref)
