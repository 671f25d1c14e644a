"""An admin *operation*: whole-store work that runs in the background, in resumable slices.

The admin API answers in bounded time (house rule: nothing in an HTTP request costs
O(number of DEKs)), so a dry run, a retirement verdict and a retirement are recorded as an
operation and answered ``202`` with its status URL (the asynchronous request-reply pattern);
the queue worker runs it. The record is the whole truth about its progress: which phase,
and per store where the scan stopped (the store's continuation) and what it counted so far.
Each step moves it one page on and is saved conditionally on the ETag it was read with, so a
worker that dies, or a slice that ends, leaves a checkpoint the next delivery continues from
and no page is counted twice. Pure: ids, JSON, no I/O.
"""

from __future__ import annotations

import enum
import re
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from shared.errors import InvalidInputError

_ID = re.compile(r"^[0-9a-f]{32}$")


class OperationKind(enum.Enum):
    DRY_RUN = "dry_run"
    VERDICT = "verdict"
    RETIRE = "retire"
    #: A store's migration between modes (``data``: ``store``, ``to``).
    MIGRATE = "migrate"
    #: A store's KEK rotation (``data``: ``store``, ``partition``?, ``older_than_days``?).
    ROTATE_KEKS = "rotate_keks"


class OperationStatus(enum.Enum):
    ACCEPTED = "accepted"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"

    @property
    def finished(self) -> bool:
        return self in {OperationStatus.SUCCEEDED, OperationStatus.FAILED}


class Phase(enum.Enum):
    """Where an operation is. A dry run scans; a verdict counts; a retirement goes through
    every step of ``shared.services.retirement`` in order (its docstring says why); a store
    job is in ``JOB`` (its own phases are in the store's mode row, ``data["job"]`` mirrors
    them)."""

    SCAN = "scan"
    COUNT = "count"
    LOOK = "look"
    RECORD = "record"
    FORGET = "forget"
    LOOK_AGAIN = "look_again"
    JOB = "job"
    DONE = "done"


def new_operation_id() -> str:
    """A random id (uuid4, hex): not guessable, and tells nothing about the key."""
    return uuid.uuid4().hex


def check_operation_id(text: str) -> str:
    """Raises: InvalidInputError: not an operation id (32 lowercase hex digits)."""
    if not isinstance(text, str) or not _ID.match(text):
        raise InvalidInputError("an operation id is 32 lowercase hexadecimal digits")
    return text


@dataclass(frozen=True)
class Operation:
    """One operation's record.

    Attributes:
        cursors: per shard, the step's checkpoint: ``continuation`` (the store's), ``done``,
            ``counted`` (records counted so far) and the partial result (``counts`` or
            ``tally``). Reset when a phase that reads the stores again begins.
        data: what later phases need from earlier ones (retire: ``attempt``, ``newest``,
            ``dropped``).
    """

    operation_id: str
    kind: OperationKind
    key_ref: str
    version: str | None
    shards: tuple[str, ...]
    created_at: datetime
    updated_at: datetime
    status: OperationStatus = OperationStatus.ACCEPTED
    phase: Phase = Phase.COUNT
    cursors: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    data: Mapping[str, Any] = field(default_factory=dict)
    result: Mapping[str, Any] | None = None
    error: Mapping[str, Any] | None = None
    steps: int = 0

    def evolve(self, **changes: Any) -> Operation:
        return replace(self, **changes)

    def cursor(self, shard: str) -> Mapping[str, Any]:
        return self.cursors.get(shard, {})

    def pending_shard(self) -> str | None:
        """The first shard whose step of this phase is not done."""
        return next((s for s in self.shards if not self.cursor(s).get("done")), None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.operation_id, "kind": self.kind.value, "key": self.key_ref,
            "version": self.version, "shards": list(self.shards),
            "created_at": self.created_at.isoformat(), "updated_at": self.updated_at.isoformat(),
            "status": self.status.value, "phase": self.phase.value,
            "cursors": {k: dict(v) for k, v in self.cursors.items()}, "data": dict(self.data),
            "result": self.result, "error": self.error, "steps": self.steps,
        }  # fmt: skip

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Operation:
        """Raises: InvalidInputError: not a record :meth:`to_dict` wrote."""
        try:
            return cls(
                check_operation_id(data["id"]), OperationKind(data["kind"]), str(data["key"]),
                data.get("version"), tuple(str(s) for s in data["shards"]),
                datetime.fromisoformat(data["created_at"]),
                datetime.fromisoformat(data["updated_at"]), OperationStatus(data["status"]),
                Phase(data["phase"]), dict(data.get("cursors") or {}), dict(data.get("data") or {}),
                data.get("result"), data.get("error"), int(data.get("steps") or 0),
            )  # fmt: skip
        except (KeyError, TypeError, ValueError):
            raise InvalidInputError("malformed operation record") from None


def fresh_cursors(shards: Iterable[str]) -> dict[str, dict[str, Any]]:
    """Every shard at its first page (a phase that reads the stores begins)."""
    return {shard: {"continuation": None, "done": False, "counted": 0} for shard in shards}


def operation_json(operation: Operation) -> dict[str, Any]:
    """What ``GET /api/operations/<id>`` answers: status, progress, result or error."""
    progress: dict[str, Any] = {"phase": operation.phase.value}
    if "store" in operation.data:  # a store job: its own progress, from its checkpoint
        progress["store"] = operation.data["store"]
        progress["job"] = operation.data.get("job")
    else:
        progress["stores"] = {
            shard: {
                "counted": int(operation.cursor(shard).get("counted") or 0),
                "done": bool(operation.cursor(shard).get("done")),
            }
            for shard in operation.shards
        }
    if "dropped" in operation.data:
        progress["previous_wraps_dropped"] = operation.data["dropped"]
    return {
        "operation_id": operation.operation_id,
        "kind": operation.kind.value,
        "key": operation.key_ref,
        "version": operation.version,
        "status": operation.status.value,
        "progress": progress,
        "result": operation.result,
        "error": operation.error,
        # Who started it (``shared.composition.Caller`` as a dict), when a caller was given.
        "caller": operation.data.get("caller"),
        "created_at": operation.created_at.isoformat(),
        "updated_at": operation.updated_at.isoformat(),
    }


def status_url(operation_id: str) -> str:
    """Where the operation is polled (the ``Location`` of the ``202``)."""
    return f"/api/operations/{operation_id}"


def accepted_json(operation: Operation) -> dict[str, Any]:
    """The ``202`` body: ``operation_id``, ``status_url``, ``status``."""
    return {
        "operation_id": operation.operation_id,
        "status_url": status_url(operation.operation_id),
        "status": operation.status.value,
    }
