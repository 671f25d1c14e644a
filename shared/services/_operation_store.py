"""Where operation records live: an ETag-conditional port, and an in-memory implementation.

Every write is conditional on the ETag the writer read (``None``: create, only if absent),
so of two deliveries of one operation's message running at once, only one can save a step:
the other's write fails, its step is dropped (it counted nothing that was kept) and it stops.

The port (:class:`OperationRecords`) moves records as JSON-ready dicts, so the Table adapter
(``shared.adapters.operation_store``) needs nothing from this layer; :class:`OperationStore`
turns them into :class:`Operation` values. The in-memory records serve the CLI (which runs an
operation to its end in process) and tests.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from shared.errors import ConflictError
from shared.rewrap import OperationMessage
from shared.services._operation import Operation


class OperationRecords(Protocol):
    async def get(self, operation_id: str) -> tuple[dict[str, Any], str] | None:
        """The record (JSON-ready) and its ETag, or ``None``.

        Raises:
            ServiceError: the store could not be read.
        """
        ...

    async def put(
        self, operation_id: str, record: Mapping[str, Any], *, expected_etag: str | None
    ) -> str:
        """Create (``expected_etag=None``) or compare-and-set; returns the new ETag.

        Raises:
            ConflictError: it exists (create) or changed since it was read (update).
        """
        ...


class OperationQueue(Protocol):
    """Where operation slices go (keyward's one queue: ``RewrapQueue``)."""

    async def send_operation(
        self, message: OperationMessage, *, delay_seconds: int = 0
    ) -> None: ...


@dataclass(frozen=True)
class StoredOperation:
    """An operation record and the ETag it was read with."""

    operation: Operation
    etag: str


class OperationStore:
    """Operations over :class:`OperationRecords`."""

    def __init__(self, records: OperationRecords) -> None:
        self._records = records

    async def get(self, operation_id: str) -> StoredOperation | None:
        """Raises: ServiceError: not readable; InvalidInputError: a malformed record."""
        found = await self._records.get(operation_id)
        return None if found is None else StoredOperation(Operation.from_dict(found[0]), found[1])

    async def put(self, operation: Operation, *, expected_etag: str | None) -> str:
        """Raises: ConflictError: the ETag condition does not hold."""
        return await self._records.put(
            operation.operation_id, operation.to_dict(), expected_etag=expected_etag
        )


class InMemoryOperationRecords:
    """:class:`OperationRecords` in a dict; records kept serialized, like a real store."""

    def __init__(self) -> None:
        self._rows: dict[str, tuple[str, str]] = {}
        self._etags = itertools.count(1)
        #: Successful writes so far (tests count checkpoints).
        self.writes = 0

    async def get(self, operation_id: str) -> tuple[dict[str, Any], str] | None:
        row = self._rows.get(operation_id)
        return None if row is None else (json.loads(row[1]), row[0])

    async def put(
        self, operation_id: str, record: Mapping[str, Any], *, expected_etag: str | None
    ) -> str:
        """See :meth:`OperationRecords.put`.

        Raises:
            ConflictError: the ETag condition does not hold.
        """
        current = self._rows.get(operation_id)
        if expected_etag is None and current is not None:
            raise ConflictError(f"operation {operation_id} exists", status=409)
        if expected_etag is not None and (current is None or current[0] != expected_etag):
            raise ConflictError(f"operation {operation_id} changed", status=412)
        etag = f"o{next(self._etags)}"
        self._rows[operation_id] = (etag, json.dumps(dict(record)))
        self.writes += 1
        return etag


class NoQueue:
    """An :class:`OperationQueue` that sends nothing: the caller runs the slices itself."""

    async def send_operation(self, message: OperationMessage, *, delay_seconds: int = 0) -> None:
        return None
