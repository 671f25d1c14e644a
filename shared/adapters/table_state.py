"""keyward's own state in Azure Table storage: rewrap job checkpoints (and, re-exported from
:mod:`shared.adapters.event_ledger`, the event ledger).

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
``ledger:{day}``   sha256(dedup key)       a handled event (``event_ledger.py``)
``rejected:...``   inverted time + digest  a rejected delivery (``event_ledger.py``)
=================  ======================  =========================================
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.data.tables import UpdateMode
from azure.data.tables.aio import TableClient

from shared.adapters._azure_errors import translated
from shared.adapters.event_ledger import EventLedger
from shared.errors import ConflictError, InvalidInputError
from shared.rewrap import JobPage, JobState, StoredJob, check_job_page

#: Table string properties hold at most 64 KiB (32 Ki UTF-16 characters); JSON is chunked.
_CHUNK_CHARS = 30_000
#: An entity holds at most 1 MiB; 30 chunks of 30,000 characters stay well inside it.
_MAX_CHUNKS = 30
_KEY_UNSAFE = re.compile(r"[/\\#?\x00-\x1f\x7f]")


__all__ = ["EventLedger", "TableJobStore"]


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
