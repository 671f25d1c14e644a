"""keyward's own state in Azure Table storage: rewrap job checkpoints and the event ledger.

The function app runs on many instances, so its state must live in shared storage with
compare-and-set writes: the job store maps :class:`shared.rewrap.JobStore` one to one onto
``create_entity`` / ``update_entity(match_condition=IfNotModified)``; the ledger remembers
handled event ids (Event Grid delivers at least once) and keeps rejected events, with the
reason, for operators.

Layout (one table, ``keywardstate`` by default, so a deployment creates one table):

=================  ======================  =========================================
PartitionKey       RowKey                  what
=================  ======================  =========================================
``job:{shard}``    job id                  a :class:`JobState` (JSON, chunked)
``event``          sha256(dedup key)       a handled event: type, id, when
``rejected``       inverted time + digest  a rejected delivery (redacted payload)
=================  ======================  =========================================
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.data.tables import UpdateMode
from azure.data.tables.aio import TableClient

from shared.adapters._azure_errors import translated
from shared.errors import ConflictError, InvalidInputError
from shared.events import RejectedEventRecord
from shared.rewrap import JobPage, JobState, StoredJob, check_job_page

#: Table string properties hold at most 64 KiB (32 Ki UTF-16 characters); JSON is chunked.
_CHUNK_CHARS = 30_000
#: An entity holds at most 1 MiB; 30 chunks of 30,000 characters stay well inside it.
_MAX_CHUNKS = 30
_KEY_UNSAFE = re.compile(r"[/\\#?\x00-\x1f\x7f]")
_MAX_TICKS = 10**19


def _safe_key(text: str) -> str:
    """PartitionKey/RowKey may not contain / \\ # ? or control characters."""
    return _KEY_UNSAFE.sub("_", text)[:255]


def _chunks(text: str) -> dict[str, str]:
    parts = [text[i : i + _CHUNK_CHARS] for i in range(0, len(text), _CHUNK_CHARS)] or [""]
    if len(parts) > _MAX_CHUNKS:
        raise ValueError(f"state of {len(text)} characters exceeds one table entity")
    return {f"State{index}": part for index, part in enumerate(parts)}


def _unchunk(entity: dict[str, Any]) -> str:
    return "".join(str(entity[f"State{i}"]) for i in range(int(entity.get("StateChunks", 1))))


class TableJobStore:
    """A :class:`shared.rewrap.JobStore` for one shard (one DEK store) of rewrap jobs.

    The same job id (key, target version) exists once per shard: each DEK store is scanned
    and checkpointed on its own, so a worker on the Table shard never waits on a blob shard.
    """

    def __init__(self, table: TableClient, shard: str) -> None:
        self._table = table
        self._partition = _safe_key(f"job:{shard}")

    @property
    def shard_partition(self) -> str:
        return self._partition

    async def get(self, job_id: str) -> StoredJob | None:
        with translated("read job state"):
            try:
                entity = await self._table.get_entity(self._partition, _safe_key(job_id))
            except ResourceNotFoundError:
                return None
        state = JobState.from_dict(json.loads(_unchunk(dict(entity))))
        return StoredJob(state, str(entity.metadata["etag"]))

    async def put(self, state: JobState, *, expected_etag: str | None) -> str:
        """Create (``expected_etag=None``) or compare-and-set the job state.

        Raises:
            ConflictError: the job exists already, or changed since it was read.
        """
        text = json.dumps(state.to_dict(), sort_keys=True, separators=(",", ":"))
        chunks = _chunks(text)
        entity: dict[str, Any] = {
            "PartitionKey": self._partition,
            "RowKey": _safe_key(state.job_id),
            "KeyRef": state.key_ref,
            "Status": state.status.value,
            "StateChunks": len(chunks),
            **chunks,
        }
        with translated("write job state"):
            if expected_etag is None:
                try:
                    result = await self._table.create_entity(entity)
                except ResourceExistsError:
                    raise ConflictError(f"job {state.job_id} already exists", status=409) from None
            else:
                result = await self._table.update_entity(
                    entity,
                    mode=UpdateMode.REPLACE,
                    etag=expected_etag,
                    match_condition=MatchConditions.IfNotModified,
                )
        return str(result["etag"])

    async def list_jobs(self, key_ref: str | None = None) -> Sequence[JobState]:
        query = "PartitionKey eq @pk"
        parameters: dict[str, Any] = {"pk": self._partition}
        states: list[JobState] = []
        with translated("list job states"):
            async for entity in self._table.query_entities(query, parameters=parameters):
                state = JobState.from_dict(json.loads(_unchunk(dict(entity))))
                if key_ref is None or state.key_ref.lower() == key_ref.lower():
                    states.append(state)
        return sorted(states, key=lambda s: s.created_at, reverse=True)

    async def list_page(self, *, limit: int, continuation: str | None = None) -> JobPage:
        """One query page of this shard's jobs (one request, RowKey order).

        Raises:
            InvalidInputError: ``limit`` out of range, or a token not issued here.
        """
        check_job_page(limit, continuation)
        token: Any = None
        if continuation is not None:
            try:
                token = json.loads(continuation)
            except ValueError:
                token = None
            if not isinstance(token, dict) or not all(
                isinstance(token.get(name), str) for name in ("PartitionKey", "RowKey")
            ):
                raise InvalidInputError("continuation is not one keyward issued")
        with translated("list job states"):
            pages: Any = self._table.query_entities(
                "PartitionKey eq @pk", parameters={"pk": self._partition}, results_per_page=limit
            ).by_page(continuation_token=token)
            states: list[JobState] = []
            async for page in pages:
                states = [JobState.from_dict(json.loads(_unchunk(dict(e)))) async for e in page]
                break  # one service page
        following = pages.continuation_token
        if not following or not following.get("PartitionKey"):
            return JobPage(states, None)
        return JobPage(states, json.dumps(following, sort_keys=True))

    async def close(self) -> None:
        """The table client is shared and closed by its owner."""


class EventLedger:
    """Remembers handled events (at-least-once delivery) and keeps rejected ones."""

    _HANDLED = "event"
    _REJECTED = "rejected"

    def __init__(self, table: TableClient) -> None:
        self._table = table

    @staticmethod
    def _row(dedup_key: str) -> str:
        return hashlib.sha256(dedup_key.encode("utf-8")).hexdigest()

    async def seen(self, dedup_key: str) -> bool:
        with translated("read event ledger"):
            try:
                await self._table.get_entity(self._HANDLED, self._row(dedup_key))
            except ResourceNotFoundError:
                return False
        return True

    async def remember(self, dedup_key: str, *, event_type: str, event_id: str) -> bool:
        """Record a handled event; ``False`` if it was recorded already (a duplicate)."""
        entity = {
            "PartitionKey": self._HANDLED,
            "RowKey": self._row(dedup_key),
            "EventType": event_type[:256],
            "EventId": event_id[:256],
            "HandledAt": datetime.now(UTC).isoformat(),
        }
        with translated("write event ledger"):
            try:
                await self._table.create_entity(entity)
            except ResourceExistsError:
                return False
        return True

    async def reject(self, record: RejectedEventRecord) -> None:
        """Keep a rejected delivery, newest first, for ``GET /api/status``."""
        ticks = _MAX_TICKS - int(record.received_at.timestamp() * 1_000_000)
        row = f"{ticks:020d}-{record.payload_sha256[:16]}"
        entity = {
            "PartitionKey": self._REJECTED,
            "RowKey": row,
            "Reason": record.reason,
            "Detail": record.detail[:4000],
            "EventId": record.event_id or "",
            "ReceivedAt": record.received_at.isoformat(),
            "Payload": record.payload,
            "PayloadTruncated": record.payload_truncated,
            "PayloadSha256": record.payload_sha256,
        }
        with translated("record rejected event"):
            await self._table.upsert_entity(entity)

    async def recent_rejections(self, limit: int = 50) -> list[dict[str, Any]]:
        """The newest rejected deliveries (without payloads, for status pages)."""
        found: list[dict[str, Any]] = []
        with translated("list rejected events"):
            pages = self._table.query_entities(
                "PartitionKey eq @pk",
                parameters={"pk": self._REJECTED},
                select=["Reason", "Detail", "EventId", "ReceivedAt"],
                results_per_page=limit,
            )
            async for entity in pages:
                found.append({
                    "reason": entity.get("Reason"),
                    "detail": entity.get("Detail"),
                    "event_id": entity.get("EventId") or None,
                    "received_at": entity.get("ReceivedAt"),
                })  # fmt: skip
                if len(found) >= limit:
                    break
        return found
