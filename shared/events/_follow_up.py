"""The key-dependent resources' follow-up of one event, as a message on keyward's queue. Pure.

Event Grid gives the event trigger 30 seconds and redelivers for 24 hours whatever fails,
so the follow-up (list the accounts, read each one's key access, re-point, flag, publish)
does not run there: the trigger enqueues this message and the queue trigger runs it, with
the queue's own retries and poison queue. One message per event holds everything the event
asks of the dependents (its rotations, access scopes and, after them, an auto-rotation), so
each account is still evaluated once per event, and in the event's order.

Like ``ShardMessage`` it carries ids only, a pinned wire format (``"kind": "dependents"``)
and a strict parser; the worker checks every key id against the vault allow-list again
before any call (a queue message is as untrusted as an event).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from shared.errors import InvalidInputError
from shared.events._model import AccessScope
from shared.events._routing import FollowUpRotation, RotateKey

FOLLOW_UP_KIND = "dependents"
FOLLOW_UP_VERSION = 1
#: Storage queue messages hold 64 KiB; one event's follow-up is well under 1 KiB.
MAX_FOLLOW_UP_CHARS = 4096
_MAX_ITEMS = 8
_VERSION = re.compile(r"^[0-9a-f]{32}$")
_NAME = re.compile(r"^[A-Za-z0-9-]{1,127}$")


@dataclass(frozen=True)
class DependentsFollowUp:
    """What one event asks of the key-dependent resources.

    Attributes:
        event_key: the event's dedup key (``type|id``): the follow-up is remembered under it,
            so a redelivered message evaluates nothing twice.
        event_id: the event's id (for logs and records).
        rotations: rotations to follow up (re-point or flag stale).
        scopes: access scopes to re-check.
        rotate: a near-expiry auto-rotation to run after the evaluation, when the event
            asked for one (the evaluation must see the key before it rotates).
    """

    event_key: str
    event_id: str
    rotations: tuple[FollowUpRotation, ...] = ()
    scopes: tuple[AccessScope, ...] = ()
    rotate: RotateKey | None = None

    def __post_init__(self) -> None:
        if not self.event_key or len(self.event_key) > 512:
            raise InvalidInputError("follow-up event_key is empty or too long")
        if not self.event_id or len(self.event_id) > 256:
            raise InvalidInputError("follow-up event_id is empty or too long")
        if len(self.rotations) > _MAX_ITEMS or len(self.scopes) > _MAX_ITEMS:
            raise InvalidInputError("follow-up names too many rotations or scopes")
        for rotation in self.rotations:
            _check_key_ref(rotation.key_ref)
            if not _VERSION.match(rotation.version):
                raise InvalidInputError("follow-up rotation version is not 32 lowercase hex")
        for scope in self.scopes:
            for name in (scope.vault_name, scope.key_name):
                if name is not None and not _NAME.match(name):
                    raise InvalidInputError("follow-up scope names a malformed vault or key")
        if self.rotate is not None:
            _check_key_ref(self.rotate.key_ref)
            current = self.rotate.if_current_version
            if current is not None and not _VERSION.match(current):
                raise InvalidInputError("follow-up rotate version is not 32 lowercase hex")

    @property
    def dedup_key(self) -> str:
        """Where the event ledger remembers that this follow-up ran."""
        return f"{FOLLOW_UP_KIND}|{self.event_key}"

    @property
    def key_refs(self) -> tuple[str, ...]:
        """Every key id the message names (the worker checks each against the allow-list)."""
        refs = [rotation.key_ref for rotation in self.rotations]
        if self.rotate is not None:
            refs.append(self.rotate.key_ref)
        return tuple(refs)

    def to_json(self) -> str:
        rotate = None
        if self.rotate is not None:
            rotate = {"key": self.rotate.key_ref, "if_current": self.rotate.if_current_version}
        return json.dumps(
            {
                "v": FOLLOW_UP_VERSION,
                "kind": FOLLOW_UP_KIND,
                "event": self.event_key,
                "event_id": self.event_id,
                "rotations": [{"key": r.key_ref, "version": r.version} for r in self.rotations],
                "scopes": [{"vault": s.vault_name, "key": s.key_name} for s in self.scopes],
                "rotate": rotate,
            },
            sort_keys=True,
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, text: str) -> DependentsFollowUp:
        """Parse a queue message body.

        Raises:
            InvalidInputError: not JSON, another kind or version, missing or malformed fields.
        """
        if len(text) > MAX_FOLLOW_UP_CHARS:
            raise InvalidInputError("follow-up message is too large")
        try:
            data: Any = json.loads(text)
        except ValueError:
            raise InvalidInputError("follow-up message is not JSON") from None
        if not isinstance(data, dict) or data.get("kind") != FOLLOW_UP_KIND:
            raise InvalidInputError("not a follow-up message")
        if data.get("v") != FOLLOW_UP_VERSION:
            raise InvalidInputError("follow-up message has an unknown format version")
        try:
            rotations = tuple(
                FollowUpRotation(_text(r["key"]), _text(r["version"]))
                for r in _items(data.get("rotations"))
            )
            scopes = tuple(
                AccessScope(_optional(s.get("vault")), _optional(s.get("key")))
                for s in _items(data.get("scopes"))
            )
            rotate_data = data.get("rotate")
            rotate = None
            if rotate_data is not None:
                if not isinstance(rotate_data, dict):
                    raise InvalidInputError("follow-up rotate must be an object")
                rotate = RotateKey(
                    _text(rotate_data["key"]), _optional(rotate_data.get("if_current"))
                )
            return cls(
                _text(data.get("event")), _text(data.get("event_id")), rotations, scopes, rotate
            )
        except (KeyError, TypeError, AttributeError):
            raise InvalidInputError("follow-up message has a missing or malformed field") from None


def _items(value: object) -> list[dict[str, Any]]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise InvalidInputError("follow-up lists must hold objects")
    return value


def _text(value: object) -> str:
    if not isinstance(value, str):
        raise InvalidInputError("follow-up field must be a string")
    return value


def _optional(value: object) -> str | None:
    return None if value is None else _text(value)


def _check_key_ref(key_ref: str) -> None:
    """Shape only; the worker checks the vault against the allow-list before any call."""
    if not key_ref.startswith("https://") or "/keys/" not in key_ref or len(key_ref) > 512:
        raise InvalidInputError("follow-up key is not an unversioned key id")
