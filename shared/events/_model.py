"""What a parsed event becomes: one of three frozen results, or a rejection (an exception).

Every result carries the event id and type, which together are the deduplication key: Event
Grid delivers at least once, so the same event may arrive twice (or more) and the second
arrival must change nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from shared.crypto import KeyId
from shared.events._types import AccessChangeKind, EventSchema, KeyEventKind


@dataclass(frozen=True)
class AccessScope:
    """Which Face accounts and keys an access change may affect.

    ``vault_name=None`` means everything (a role assigned at subscription or resource-group
    scope reaches every vault below it); ``key_name=None`` means every key in the vault.
    """

    vault_name: str | None = None
    key_name: str | None = None

    @classmethod
    def everything(cls) -> AccessScope:
        return cls(None, None)

    @property
    def is_everything(self) -> bool:
        return self.vault_name is None

    def __post_init__(self) -> None:
        if self.vault_name is None and self.key_name is not None:
            raise ValueError("a key scope needs its vault")


@dataclass(frozen=True)
class KeyVaultEvent:
    """A validated key event from an allow-listed vault.

    Attributes:
        event_id: the delivery's id (dedup key with ``event_type``).
        kind: new version, near expiry, or expired.
        vault_name: the vault the topic names (lower-case), equal to ``data.VaultName``.
        key_id: the key id from ``data.Id``; versioned for ``NEW_VERSION``.
        version: the key version the event is about (``None`` only if the event gave none).
        nbf: not-before of that version, if the event carried one.
        exp: expiry of that version, if the event carried one.
        event_time: when Event Grid says it happened (``None`` when a CloudEvent omits it).
        schema: the envelope it arrived in.
        event_type: the full type string.
    """

    event_id: str
    kind: KeyEventKind
    vault_name: str
    key_id: KeyId
    version: str | None
    nbf: datetime | None
    exp: datetime | None
    event_time: datetime | None
    schema: EventSchema
    event_type: str


@dataclass(frozen=True)
class AccessChangeEvent:
    """Something changed that may grant or remove access to keys in ``scope``.

    Attributes:
        resource_uri: the ARM id that changed (role assignment, vault); ``None`` for
            ``VaultAccessPolicyChanged``, which names only its vault.
    """

    event_id: str
    kind: AccessChangeKind
    scope: AccessScope
    resource_uri: str | None
    event_time: datetime | None
    schema: EventSchema
    event_type: str


@dataclass(frozen=True)
class IgnoredEvent:
    """A well-formed event keyward has nothing to do with (secrets, certificates, other
    resources on the subscription topic). ``reason`` is for the debug log."""

    event_id: str
    event_type: str
    reason: str
    schema: EventSchema


ParsedEvent = KeyVaultEvent | AccessChangeEvent | IgnoredEvent


def dedup_key(event: ParsedEvent) -> str:
    """The key under which a handled event is remembered: type and id.

    Event Grid ids are unique per topic; including the type keeps a forged or colliding id of
    one type from suppressing a genuine event of another.
    """
    return f"{event.event_type}|{event.event_id}"
