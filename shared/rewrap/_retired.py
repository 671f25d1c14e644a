"""The retired-version record: which versions of a key an operator retired through keyward.

Retiring a version is the decision after which keyward drops the previous wraps kept under
it and may call it "safe to disable". From then on nothing keyward runs may write under it:
the engine refuses it as a target and refuses to keep it as a DEK's previous wrap (a DEK
still wrapped under it is reported, not rewritten), and the verdict reports DEKs found under
it. The record is what makes that check possible for every worker, so it lives in shared
storage (keyward's state table in the Function App, the SQLite job file for the CLI).

A retire call that finds a job started after its record was written withdraws the record,
but only its own: each write carries the caller's attempt id and the withdrawal is
conditional on it, so of two concurrent retire calls the one that proceeded keeps the
version retired even if the other gives up.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable


def fold_key(key_ref: str) -> str:
    """The spelling-independent form of an unversioned key id (Key Vault names are
    case-insensitive; a retired version is retired under every spelling of its key)."""
    return key_ref.strip().rstrip("/").lower()


@runtime_checkable
class RetiredVersions(Protocol):
    """Durable record of retired key versions."""

    async def retired_versions(self, key_ref: str) -> frozenset[str]:
        """Lower-case versions of ``key_ref`` (any spelling) recorded as retired."""
        ...

    async def record_retired(self, key_ref: str, version: str, *, attempt: str) -> None:
        """Record ``version`` as retired (idempotent); ``attempt`` names this retire call."""
        ...

    async def withdraw_retired(self, key_ref: str, version: str, *, attempt: str) -> bool:
        """Remove the record if it is still the one ``attempt`` wrote; ``True`` if removed."""
        ...


class InMemoryRetiredVersions:
    """A :class:`RetiredVersions` in a dict, for tests and single-process runs."""

    def __init__(self) -> None:
        self._rows: dict[tuple[str, str], str] = {}

    async def retired_versions(self, key_ref: str) -> frozenset[str]:
        key = fold_key(key_ref)
        return frozenset(version for ref, version in self._rows if ref == key)

    async def record_retired(self, key_ref: str, version: str, *, attempt: str) -> None:
        self._rows[(fold_key(key_ref), version.lower())] = attempt

    async def withdraw_retired(self, key_ref: str, version: str, *, attempt: str) -> bool:
        row = (fold_key(key_ref), version.lower())
        if self._rows.get(row) != attempt:
            return False
        del self._rows[row]
        return True


class NoRetiredVersions:
    """The record of a deployment that never retires through keyward: nothing is retired.

    Used where no record is wired (older call sites, benchmarks); it refuses writes so a
    retire can never pretend to have recorded something.
    """

    async def retired_versions(self, key_ref: str) -> frozenset[str]:
        return frozenset()

    async def record_retired(self, key_ref: str, version: str, *, attempt: str) -> None:
        raise NotImplementedError("no retired-version record is configured")

    async def withdraw_retired(self, key_ref: str, version: str, *, attempt: str) -> bool:
        return False
