"""The rewrap queue's message: one shard (one DEK store) of one job. Pure.

A message carries no progress: the checkpoint lives in the job store, so any instance that
takes the message resumes where the last one stopped, a duplicate message is harmless (the
job lease admits one worker at a time) and a continuation is simply the same message again.
It carries no key material either (house rule 4), only ids.

The shard is ``kind:name`` of a generic shape: which kinds exist is the DEK-store registry's
business (``shared.composition``), and a worker refuses a shard it has no store for.

**The job id is derived, never trusted.** Anyone with write access to the queue can put a
message on it; were the worker to take the ``job`` field as given, such a message could name
(and fail, or lease) another key's job. So a message's job id is always
``rewrap_job_id(key, target, shard)``: a message whose ``job`` field claims another id is
refused (:class:`JobIdMismatchError`) and never touches that job.

keyward's queue carries more than one kind of message (``"kind"``; see
:func:`queue_message_kind`): ``rewrap`` shards (this module; a message without ``kind`` is one,
as the first version wrote them) and the key-dependent resources' follow-ups
(``shared.events.DependentsFollowUp``). One queue trigger takes both.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from shared.errors import InvalidInputError
from shared.rewrap._job_state import rewrap_job_id
from shared.telemetry import is_traceparent

MESSAGE_VERSION = 1
#: ``kind`` of a rewrap shard message (the default when a message has no ``kind``).
REWRAP_KIND = "rewrap"
#: ``kind:name``: a lowercase kind, then a name as Azure Tables and Blob containers allow.
_SHARD = re.compile(r"^[a-z][a-z0-9]{0,31}:[A-Za-z0-9-]{3,63}$")
_VERSION = re.compile(r"^[0-9a-f]{32}$")
#: Storage queue messages hold 64 KiB; ours are a few hundred bytes.
MAX_MESSAGE_CHARS = 4096


class JobIdMismatchError(InvalidInputError):
    """A shard message claims a job id its content does not derive to (forged or corrupt).

    Attributes:
        claimed: the id the message named (truncated).
        derived: the id its key, target version and shard give.
    """

    def __init__(self, claimed: str, derived: str) -> None:
        super().__init__(f"rewrap message claims job {claimed[:80]!r}, its content names {derived}")
        self.claimed = claimed[:128]
        self.derived = derived


def queue_message_kind(text: str) -> str:
    """The ``kind`` of a keyward queue message (``rewrap`` when it names none).

    Only a peek, to pick the parser; the parser then checks everything. Text that is not a
    JSON object is reported as ``rewrap``, whose parser refuses it with the reason.
    """
    if len(text) > MAX_MESSAGE_CHARS:
        return REWRAP_KIND
    try:
        data: Any = json.loads(text)
    except ValueError:
        return REWRAP_KIND
    kind = data.get("kind", REWRAP_KIND) if isinstance(data, dict) else REWRAP_KIND
    return kind if isinstance(kind, str) else REWRAP_KIND


@dataclass(frozen=True)
class ShardMessage:
    """Rewrap ``shard``'s DEKs of ``key_ref`` to ``target_version``.

    Attributes:
        job_id: the job: ``rewrap_job_id(key_ref, target_version, shard)``; any other value
            is refused (:class:`JobIdMismatchError`).
        key_ref: the unversioned key id.
        target_version: the version the job was planned for (the engine still confirms
            it is the newest enabled one and moves forward if a newer one appeared).
        shard: ``kind:name``, e.g. ``table:{table}`` or ``blob:{container}``.
        slice_number: how many time slices ran before this message (for status and logs).
        traceparent: the W3C trace context of the span that sent it (the queue adapter
            stamps it; optional: messages written before it existed still parse). Not part
            of the message's identity (``compare=False``).
    """

    job_id: str
    key_ref: str
    target_version: str
    shard: str
    slice_number: int = 0
    traceparent: str | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if not _SHARD.match(self.shard):
            raise InvalidInputError(f"shard {self.shard!r} is not KIND:NAME")
        if not _VERSION.match(self.target_version):
            raise InvalidInputError("target_version must be 32 lowercase hex characters")
        if self.slice_number < 0:
            raise InvalidInputError("slice_number must not be negative")
        if self.traceparent is not None and not is_traceparent(self.traceparent):
            raise InvalidInputError("traceparent is not a W3C trace context")
        derived = rewrap_job_id(self.key_ref, self.target_version, self.shard)
        if self.job_id != derived:
            raise JobIdMismatchError(self.job_id, derived)

    @classmethod
    def for_shard(
        cls, key_ref: str, target_version: str, shard: str, slice_number: int = 0
    ) -> ShardMessage:
        """The message for one shard, its job id derived from the rest."""
        job_id = rewrap_job_id(key_ref, target_version, shard)
        return cls(job_id, key_ref, target_version, shard, slice_number)

    def next_slice(self) -> ShardMessage:
        return ShardMessage(
            self.job_id, self.key_ref, self.target_version, self.shard, self.slice_number + 1
        )

    def to_json(self) -> str:
        return json.dumps(
            {
                "v": MESSAGE_VERSION,
                "kind": REWRAP_KIND,
                "job": self.job_id,
                "key": self.key_ref,
                "target": self.target_version,
                "shard": self.shard,
                "slice": self.slice_number,
                **({"traceparent": self.traceparent} if self.traceparent else {}),
            },
            sort_keys=True,
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, text: str) -> ShardMessage:
        """Parse a queue message body.

        Raises:
            JobIdMismatchError: the ``job`` field is not the id the content derives to.
            InvalidInputError: not JSON, unknown version or kind, missing or malformed fields.
        """
        if len(text) > MAX_MESSAGE_CHARS:
            raise InvalidInputError("rewrap message is too large")
        try:
            data: Any = json.loads(text)
        except ValueError:
            raise InvalidInputError("rewrap message is not JSON") from None
        if not isinstance(data, dict) or data.get("v") != MESSAGE_VERSION:
            raise InvalidInputError("rewrap message has an unknown format version")
        if data.get("kind", REWRAP_KIND) != REWRAP_KIND:
            raise InvalidInputError("not a rewrap message (another kind)")
        try:
            fields = {name: data[name] for name in ("job", "key", "target", "shard")}
        except KeyError as missing:
            raise InvalidInputError(f"rewrap message lacks {missing}") from None
        if not all(isinstance(value, str) for value in fields.values()):
            raise InvalidInputError("rewrap message fields must be strings")
        slice_number = data.get("slice", 0)
        if not isinstance(slice_number, int) or isinstance(slice_number, bool):
            raise InvalidInputError("rewrap message slice must be an integer")
        # Only the shape is checked here; the worker checks the key against the vault
        # allow-list (VaultAllowList.check_key_id) before any call.
        key = fields["key"]
        if not key.startswith("https://") or "/keys/" not in key or len(key) > 512:
            raise InvalidInputError("rewrap message key is not an unversioned key id")
        return cls(
            fields["job"],
            fields["key"],
            fields["target"],
            fields["shard"],
            slice_number,
            traceparent=message_traceparent(data),
        )


#: Ids a span may name (job ids, operation ids): short, of a plain alphabet.
_ID_LABEL = re.compile(r"^[A-Za-z0-9:._-]{1,128}$")


def message_traceparent(data: object) -> str | None:
    """The ``traceparent`` a decoded message carries, or ``None`` (absent or malformed: a
    bad one is ignored, never fatal, since it only joins traces)."""
    value = data.get("traceparent") if isinstance(data, dict) else None
    return value if is_traceparent(value) else None


def with_traceparent(text: str, traceparent: str | None) -> str:
    """A message body (a JSON object) with ``traceparent`` added, for message kinds that have
    no field of their own for it (the key-dependent follow-ups, whose parser ignores unknown
    fields); ``text`` unchanged without a valid one or when it is not a JSON object."""
    if not is_traceparent(traceparent):
        return text
    try:
        data: Any = json.loads(text)
    except ValueError:
        return text
    if not isinstance(data, dict):
        return text
    return json.dumps({**data, "traceparent": traceparent}, sort_keys=True, separators=(",", ":"))


@dataclass(frozen=True)
class MessagePeek:
    """What a trigger's span may say about a queue message before it is parsed: its kind, the
    ids it names (only when they look like ids) and the trace context it carries."""

    kind: str
    traceparent: str | None = None
    job_id: str | None = None
    operation_id: str | None = None
    slice_number: int | None = None


def peek_message(text: str) -> MessagePeek:
    """Read a queue message's kind, ids and ``traceparent`` for telemetry; never raises.

    The worker parses and checks the message afterwards: nothing here is trusted.
    """
    kind = queue_message_kind(text)
    if len(text) > MAX_MESSAGE_CHARS:
        return MessagePeek(kind)
    try:
        data: Any = json.loads(text)
    except ValueError:
        return MessagePeek(kind)
    if not isinstance(data, dict):
        return MessagePeek(kind)

    def label(name: str) -> str | None:
        value = data.get(name)
        return value if isinstance(value, str) and _ID_LABEL.match(value) else None

    number = data.get("slice")
    return MessagePeek(
        kind,
        traceparent=message_traceparent(data),
        job_id=label("job"),
        operation_id=label("operation"),
        slice_number=number if type(number) is int else None,
    )
