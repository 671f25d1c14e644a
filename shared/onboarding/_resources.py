"""ARM resources onboarding reads, as plain values (the adapter fills them in)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class VaultRef:
    """A vault as ARM knows it."""

    name: str
    arm_id: str
    subscription_id: str
    resource_group: str
    location: str
    rbac: bool


@dataclass(frozen=True)
class TopicRef:
    """An Event Grid system topic."""

    name: str
    subscription_id: str
    resource_group: str
    source: str
    topic_type: str
    #: Created by connect-vault (tagged), so disconnect-vault may delete it.
    managed: bool


@dataclass(frozen=True)
class FoundAssignment:
    name: str
    scope: str
    role_guid: str
