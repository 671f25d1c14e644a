"""The Face kind's adapter: Cognitive Services accounts of kind ``Face``.

Face is the default kind and the first keyward watched; everything here is the generic
Cognitive Services adapter (``arm_cognitive``) narrowed to account kind ``Face``, kept under
its historical names so the Face kind's registry entry, docs and tests read as before.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from shared.adapters.arm import ArmClients
from shared.adapters.arm_cognitive import (
    KEY_SOURCE_KEY_VAULT,
    KEYWARD_TAG_PREFIX,
    AccountKinds,
    ArmCognitiveAccountWriter,
    ArmCognitiveInventory,
    cognitive_from_arm,
    parse_account_id,
)
from shared.dependents import DependentResource

__all__ = [
    "FACE_KIND",
    "FACE_KINDS",
    "KEYWARD_TAG_PREFIX",
    "KEY_SOURCE_KEY_VAULT",
    "ArmFaceAccountWriter",
    "ArmFaceInventory",
    "account_from_arm",
    "parse_account_id",
]

FACE_KIND = "Face"
#: The account kinds the ``face`` registry entry tracks.
FACE_KINDS = AccountKinds(only=frozenset({FACE_KIND}))


def account_from_arm(resource: Mapping[str, object]) -> DependentResource | None:
    """A Face account with a Key Vault key as a ``DependentResource``; else ``None``."""
    return cognitive_from_arm(resource, FACE_KINDS)


class ArmFaceInventory(ArmCognitiveInventory):
    """Face accounts, listed per subscription (and resource group)."""

    def __init__(
        self, arm: ArmClients, subscriptions: Sequence[str], *, resource_groups: Sequence[str] = ()
    ) -> None:
        super().__init__(arm, subscriptions, resource_groups=resource_groups, kinds=FACE_KINDS)


#: Face accounts are written like every Cognitive Services account.
ArmFaceAccountWriter = ArmCognitiveAccountWriter
