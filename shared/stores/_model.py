"""What keyward's own stores hold beyond the protocol: new DEKs to insert and full details.

``NewDek`` is the insert shape the seed writer and the demo use; ``DekDetails`` is a full
read of one DEK (previous wrap, unreadable reason, sealed payload) for tests, the demo's
final check and operators. Neither carries plaintext key material: only wrapped bytes.
"""

from __future__ import annotations

from dataclasses import dataclass

from shared.crypto import WrapAlgorithm
from shared.stores._common import split_key_id
from shared.stores._protocol import DekRecord, Rewrap


@dataclass(frozen=True)
class NewDek:
    """A freshly wrapped DEK to insert.

    Attributes:
        partition: tenant or shard (Table partition key); no ``/``, ``\\``, ``#`` or ``?``.
        dek_id: the DEK's id within its partition (Table row key); same character rules.
        key_id: the full versioned key id the DEK is wrapped under.
        algorithm: the wrap algorithm.
        wrapped: the wrapped DEK.
        kcv: the DEK's key check value.
        sealed: optional data sealed under the DEK (``shared.crypto.seal``), kept beside it so
            the demo and tests can prove the DEK still opens its data after a rewrap.
    """

    partition: str
    dek_id: str
    key_id: str
    algorithm: WrapAlgorithm
    wrapped: bytes
    kcv: str
    sealed: bytes | None = None

    @property
    def ref(self) -> str:
        return f"{self.partition}/{self.dek_id}"

    def __repr__(self) -> str:
        return (
            f"NewDek(ref={self.ref!r}, key_id={self.key_id!r}, wrapped=<{len(self.wrapped)} bytes>)"
        )


@dataclass(frozen=True)
class DekDetails:
    """Everything a keyward-format store keeps about one DEK."""

    record: DekRecord
    previous_algorithm: str | None = None
    previous_wrapped: bytes | None = None
    previous_kcv: str | None = None
    unreadable: str | None = None
    sealed: bytes | None = None

    def __repr__(self) -> str:
        return f"DekDetails({self.record!r}, unreadable={self.unreadable!r})"


def split_ref(ref: str) -> tuple[str, str]:
    """``(partition, dek_id)`` of a ``partition/dek_id`` ref (partitions never hold ``/``)."""
    partition, _, dek_id = ref.partition("/")
    return partition, dek_id


def rewrap_refusal(rewrap: Rewrap) -> str | None:
    """Why a store must refuse this rewrap before writing anything, or ``None``.

    These are the invariants a store can check on its own: the record was sound when read,
    the new wrap is under a version of the same key (any spelling of it: Key Vault names
    are case-insensitive), and the KCV (the DEK's identity) did not
    change, so a wrap of some other key can never replace a DEK.
    """
    record = rewrap.record
    old, new = split_key_id(record.key_id), split_key_id(rewrap.key_id)
    if record.problem is not None:
        return f"record has a problem and is never rewritten: {record.problem}"
    if not rewrap.wrapped:
        return "new wrap is empty"
    if old is None or new is None or old[0].lower() != new[0].lower():
        return f"{rewrap.key_id!r} is not a version of the DEK's key"
    if record.kcv is not None and rewrap.kcv != record.kcv:
        return "kcv of the new wrap differs from the DEK's: not the same DEK"
    return None
