"""Parse and validate one Key Vault or subscription event: the gate before any network call.

Everything here is pure: a payload and the vault allow-list in, a frozen result or an
``EventRejectedError`` out. A key event is accepted only when its topic is an allow-listed
vault's ARM id, ``data.VaultName`` names that same vault, ``data.Id`` is a well-formed key id
on that vault's host, and ``ObjectName``/``Version`` agree with the id. Each disagreement has
its own ``RejectionReason`` so a rejected-events table can be read without a debugger.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from shared.crypto import KeyId, VaultAllowList
from shared.errors import VaultNotAllowedError
from shared.events import _types as t
from shared.events._arm_ids import VaultResource, parse_vault_resource
from shared.events._envelope import Envelope, load_payload, read_envelope
from shared.events._fields import reject
from shared.events._model import (
    AccessChangeEvent,
    AccessScope,
    IgnoredEvent,
    KeyVaultEvent,
    ParsedEvent,
)
from shared.events._resources import parse_resource_event
from shared.events._types import AccessChangeKind, RejectionReason

_CANONICAL_TYPES = {name.lower(): name for name in t.KNOWN_EVENT_TYPES}


def parse_event(payload: object, allow_list: VaultAllowList) -> ParsedEvent:
    """Turn one delivered event into a ``KeyVaultEvent``, ``AccessChangeEvent`` or
    ``IgnoredEvent``.

    Args:
        payload: one event as a dict (either schema), or its JSON text or bytes.
        allow_list: the vaults keyward trusts (``Settings.vault_allowlist``).

    Raises:
        EventRejectedError: malformed, foreign or inconsistent; ``reason`` says which.
    """
    envelope = read_envelope(load_payload(payload))
    event_type = _CANONICAL_TYPES.get(envelope.event_type.lower())
    if event_type is None:
        raise reject(
            RejectionReason.UNKNOWN_EVENT_TYPE,
            f"event type {envelope.event_type[:100]!r} is not one keyward subscribes to",
            envelope.event_id,
        )
    if event_type in t.IGNORED_EVENT_TYPES:
        return IgnoredEvent(
            envelope.event_id,
            event_type,
            "secret and certificate events carry nothing keyward guards",
            envelope.schema,
        )
    if event_type in t.RESOURCE_EVENT_TYPES:
        return parse_resource_event(envelope, event_type, allow_list)
    vault = _vault_topic(envelope, allow_list)
    if event_type == t.VAULT_ACCESS_POLICY_CHANGED:
        return _access_policy_changed(envelope, event_type, vault, allow_list)
    return _key_event(envelope, event_type, vault, allow_list)


def _vault_topic(envelope: Envelope, allow_list: VaultAllowList) -> VaultResource:
    event_id = envelope.event_id
    if envelope.source is None:
        raise reject(RejectionReason.MISSING_FIELD, "topic/source is missing", event_id)
    vault = parse_vault_resource(envelope.source)
    if vault is None:
        raise reject(
            RejectionReason.BAD_TOPIC,
            f"topic {envelope.source[:200]!r} is not a Key Vault ARM id",
            event_id,
        )
    if not allow_list.allows_name(vault.vault_name):
        raise reject(
            RejectionReason.FOREIGN_VAULT,
            f"vault {vault.vault_name!r} is not on the allow-list",
            event_id,
        )
    vault_name = envelope.data.required_text("VaultName")
    if vault_name.lower() != vault.vault_name:
        raise reject(
            RejectionReason.VAULT_MISMATCH,
            f"data.VaultName {vault_name[:30]!r} is not the topic's vault {vault.vault_name!r}",
            event_id,
        )
    return vault


def _key_event(
    envelope: Envelope, event_type: str, vault: VaultResource, allow_list: VaultAllowList
) -> KeyVaultEvent:
    data, event_id = envelope.data, envelope.event_id
    kind = t.KEY_KIND_BY_TYPE[event_type]
    object_type = data.text("ObjectType", required=False)
    if object_type is not None and object_type.lower() != "key":
        raise reject(
            RejectionReason.OBJECT_TYPE_MISMATCH,
            f"data.ObjectType {object_type[:20]!r} in a key event",
            event_id,
        )
    key_id = _key_id(
        data.required_text("Id"),
        allow_list,
        vault,
        event_id,
        versioned=kind is t.KeyEventKind.NEW_VERSION,
    )
    object_name = data.required_text("ObjectName")
    if object_name.lower() != key_id.name.lower():
        raise reject(
            RejectionReason.NAME_MISMATCH,
            f"data.ObjectName {object_name[:130]!r} is not the key in data.Id ({key_id.name!r})",
            event_id,
        )
    version = data.text("Version", required=kind is t.KeyEventKind.NEW_VERSION)
    if version is not None and version.lower() != (key_id.version or ""):
        raise reject(
            RejectionReason.VERSION_MISMATCH,
            f"data.Version {version[:40]!r} is not the version in data.Id",
            event_id,
        )
    return KeyVaultEvent(
        event_id=event_id,
        kind=kind,
        vault_name=vault.vault_name,
        key_id=key_id,
        version=key_id.version,
        nbf=data.epoch_time("NBF"),
        exp=data.epoch_time("EXP"),
        event_time=envelope.time,
        schema=envelope.schema,
        event_type=event_type,
    )


def _key_id(
    value: str,
    allow_list: VaultAllowList,
    vault: VaultResource,
    event_id: str,
    *,
    versioned: bool,
) -> KeyId:
    try:
        key_id = allow_list.check_key_id(value, require_version=versioned)
    except VaultNotAllowedError:
        raise reject(
            RejectionReason.FOREIGN_VAULT, "data.Id names a vault not on the allow-list", event_id
        ) from None
    except ValueError as exc:
        # KeyIdError, or a ValueError from urlsplit on a mangled host ("https://[::1").
        raise reject(RejectionReason.BAD_KEY_ID, f"data.Id: {exc}"[:300], event_id) from None
    if key_id.vault_name != vault.vault_name or key_id.managed_hsm != vault.managed_hsm:
        raise reject(
            RejectionReason.VAULT_MISMATCH,
            f"data.Id is in vault {key_id.vault_name!r}, the topic is {vault.vault_name!r}",
            event_id,
        )
    return key_id


def _access_policy_changed(
    envelope: Envelope, event_type: str, vault: VaultResource, allow_list: VaultAllowList
) -> AccessChangeEvent:
    vault_id = envelope.data.text("Id", required=False)
    if vault_id is not None:
        # The vault's URL (possibly with a path). Only its origin is checked: it must be the
        # allow-listed vault's, so a forged event cannot point keyward at another host.
        try:
            parts = urlsplit(vault_id)
        except ValueError:
            raise reject(
                RejectionReason.BAD_KEY_ID, "data.Id is not a URL", envelope.event_id
            ) from None
        origin = f"{parts.scheme.lower()}://{parts.netloc.lower()}".removesuffix(":443")
        allowed = {v.url for v in allow_list.vaults if v.name == vault.vault_name}
        if origin not in allowed:
            raise reject(
                RejectionReason.VAULT_MISMATCH,
                f"data.Id {vault_id[:200]!r} is not on vault {vault.vault_name!r}",
                envelope.event_id,
            )
    return AccessChangeEvent(
        event_id=envelope.event_id,
        kind=AccessChangeKind.ACCESS_POLICY_CHANGED,
        scope=AccessScope(vault.vault_name),
        resource_uri=None,
        event_time=envelope.time,
        schema=envelope.schema,
        event_type=event_type,
    )
