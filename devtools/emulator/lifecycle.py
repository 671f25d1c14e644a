"""Time-driven key life: rotation policies, auto-rotation, near-expiry and expiry events.

Key Vault emits ``KeyNewVersionCreated`` on create, import, rotate and auto-rotation,
``KeyNearExpiry`` when the current version comes within the policy's notify lead time of its
expiry (30 days when no policy says otherwise), and ``KeyExpired`` once it has expired. The
emulator's clock can jump, so these are evaluated by :func:`tick` (every second, and right
after the control API moves the clock) rather than scheduled: whatever became true since the
last tick is published once, and the ``*_notified`` flags on the version keep it once.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any

from devtools.emulator.state import EmulatorState, Key, KeyVersion, Vault

EVENT_NEW_VERSION = "Microsoft.KeyVault.KeyNewVersionCreated"
EVENT_NEAR_EXPIRY = "Microsoft.KeyVault.KeyNearExpiry"
EVENT_EXPIRED = "Microsoft.KeyVault.KeyExpired"
DEFAULT_NOTIFY_LEAD = "P30D"

_DURATION = re.compile(
    r"^P(?:(?P<y>\d+)Y)?(?:(?P<mo>\d+)M)?(?:(?P<w>\d+)W)?(?:(?P<d>\d+)D)?"
    r"(?:T(?:(?P<h>\d+)H)?(?:(?P<mi>\d+)M)?(?:(?P<s>\d+(?:\.\d+)?)S)?)?$"
)


def parse_duration(text: str) -> float:
    """ISO 8601 duration in seconds (a year is 365 days, a month 30, as Key Vault counts).

    Raises:
        ValueError: not a duration.
    """
    match = _DURATION.match(text.strip().upper()) if text else None
    if not match or text.strip().upper() in ("P", "PT"):
        raise ValueError(f"{text!r} is not an ISO 8601 duration")
    parts = {k: float(v) if v else 0.0 for k, v in match.groupdict().items()}
    days = parts["y"] * 365 + parts["mo"] * 30 + parts["w"] * 7 + parts["d"]
    return days * 86400 + parts["h"] * 3600 + parts["mi"] * 60 + parts["s"]


def default_rotation_policy() -> dict[str, Any]:
    """What the service answers for a key nobody set a policy on: notify 30 days ahead."""
    return {
        "lifetimeActions": [
            {"trigger": {"timeBeforeExpiry": DEFAULT_NOTIFY_LEAD}, "action": {"type": "Notify"}}
        ],
        "attributes": {},
    }


def expiry_from_policy(policy: dict[str, Any] | None, now: float) -> float | None:
    """The ``exp`` a new version gets from ``attributes.expiryTime``, if the policy sets it."""
    expiry = ((policy or {}).get("attributes") or {}).get("expiryTime")
    return now + parse_duration(expiry) if expiry else None


def _actions(policy: dict[str, Any] | None, kind: str) -> list[dict[str, Any]]:
    found = []
    for action in (policy or default_rotation_policy()).get("lifetimeActions") or []:
        if str((action.get("action") or {}).get("type", "")).lower() == kind:
            found.append(action.get("trigger") or {})
    return found


def event_data(vault: Vault, key: Key, version: KeyVersion) -> dict[str, Any]:
    """The Key Vault event payload (shape of ``specs/eventgrid/keyvault/KeyVault.json``)."""
    return {
        "Id": f"{vault.url}/keys/{key.name}/{version.version}",
        "VaultName": vault.name,
        "ObjectType": "Key",
        "ObjectName": key.name,
        "Version": version.version,
        "NBF": int(version.not_before) if version.not_before is not None else None,
        "EXP": int(version.expires) if version.expires is not None else None,
    }


def publish_new_version(state: EmulatorState, vault: Vault, key: Key, version: KeyVersion) -> None:
    state.events.publish(vault.arm_id, EVENT_NEW_VERSION, key.name, event_data(vault, key, version))


def due_rotation(key: Key, now: float) -> bool:
    """Whether the key's policy asks for a rotation of its current version by ``now``."""
    current = key.current
    for trigger in _actions(key.rotation_policy, "rotate"):
        after = trigger.get("timeAfterCreate")
        before = trigger.get("timeBeforeExpiry")
        if after and now >= current.created + parse_duration(after):
            return True
        if (
            before
            and current.expires is not None
            and (now >= current.expires - parse_duration(before))
        ):
            return True
    return False


def notify_lead(key: Key) -> float:
    for trigger in _actions(key.rotation_policy, "notify"):
        lead = trigger.get("timeBeforeExpiry")
        if lead:
            return parse_duration(str(lead))
    return parse_duration(DEFAULT_NOTIFY_LEAD)


Rotate = Callable[[Vault, str], Awaitable[Any]]


async def tick(state: EmulatorState, rotate: Rotate) -> None:
    """Publish what time has made true: rotations due, near expiry, expiry; purge due keys."""
    now = state.clock.now()
    for vault in list(state.vaults.values()):
        for name in list(vault.deleted_keys):
            deleted = vault.deleted_keys[name]
            if deleted.scheduled_purge is not None and now >= deleted.scheduled_purge:
                del vault.deleted_keys[name]
                state.changed()
        for key in list(vault.keys.values()):
            if not key.versions:
                continue
            try:
                if key.rotation_policy and due_rotation(key, now):
                    await rotate(vault, key.name)
                    continue
                lead = notify_lead(key)
            except ValueError:
                continue  # an unparseable policy duration: the service would have refused it
            current = key.current
            if current.expires is None:
                continue
            data = event_data(vault, key, current)
            if not current.near_expiry_notified and now >= current.expires - lead:
                current.near_expiry_notified = True
                state.events.publish(vault.arm_id, EVENT_NEAR_EXPIRY, key.name, data)
                state.changed()
            if not current.expired_notified and now >= current.expires:
                current.expired_notified = True
                state.events.publish(vault.arm_id, EVENT_EXPIRED, key.name, data)
                state.changed()
