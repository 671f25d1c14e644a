"""The queue message that runs one slice of an admin operation. Pure.

An admin operation (a dry run, a retirement verdict, a retirement: ``shared.services``)
travels on keyward's one queue beside the rewrap shards, told apart by ``kind``. Like a shard
message it carries no progress (the checkpoint is in the operation's record, so a duplicate
or a redelivery continues from it) and no key material: only the operation's random id,
which the worker looks up; a message naming an unknown id does nothing.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from shared.errors import InvalidInputError
from shared.rewrap._messages import MAX_MESSAGE_CHARS, MESSAGE_VERSION, message_traceparent
from shared.telemetry import is_traceparent

#: ``kind`` of an operation message.
OPERATION_KIND = "operation"
_ID = re.compile(r"^[0-9a-f]{32}$")


@dataclass(frozen=True)
class OperationMessage:
    """Run the next slice of operation ``operation_id`` (``slice_number`` slices ran before).

    ``traceparent``: the W3C trace context of the span that sent it (stamped by the queue
    adapter; optional, so older messages still parse; not part of its identity).
    """

    operation_id: str
    slice_number: int = 0
    traceparent: str | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if not _ID.match(self.operation_id):
            raise InvalidInputError("operation id must be 32 lowercase hex characters")
        if self.slice_number < 0:
            raise InvalidInputError("slice_number must not be negative")
        if self.traceparent is not None and not is_traceparent(self.traceparent):
            raise InvalidInputError("traceparent is not a W3C trace context")

    def next_slice(self) -> OperationMessage:
        return OperationMessage(self.operation_id, self.slice_number + 1)

    def to_json(self) -> str:
        body = {"v": MESSAGE_VERSION, "kind": OPERATION_KIND, "operation": self.operation_id,
                "slice": self.slice_number}  # fmt: skip
        if self.traceparent:
            body["traceparent"] = self.traceparent
        return json.dumps(body, sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> OperationMessage:
        """Raises: InvalidInputError: not an operation message of this version."""
        if len(text) > MAX_MESSAGE_CHARS:
            raise InvalidInputError("operation message is too long")
        try:
            data: Any = json.loads(text)
        except ValueError:
            raise InvalidInputError("operation message is not JSON") from None
        if not isinstance(data, dict) or data.get("kind") != OPERATION_KIND:
            raise InvalidInputError("not an operation message")
        if data.get("v") != MESSAGE_VERSION:
            raise InvalidInputError(f"unknown operation message version {data.get('v')!r}")
        number = data.get("slice", 0)
        if not isinstance(data.get("operation"), str) or type(number) is not int:
            raise InvalidInputError("operation message needs 'operation' and an integer 'slice'")
        return cls(data["operation"], number, traceparent=message_traceparent(data))
