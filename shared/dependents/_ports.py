"""The port for a kind of key-dependent resource, and the ports every kind's adapters fill.

A kind (Face accounts, every other Azure AI services account kind, storage accounts) is
what differs between resources that use a customer-managed key: how ARM lists them
(:class:`DependentInventory`), how their key version and tags are written
(:class:`DependentWriter`), the names users see for them (:class:`KindLabels`) and, rarely,
which keys their service accepts (:class:`VerdictRules`). Everything else (facts, verdict,
flags, rotation follow-up, the index) is the same for every kind and lives beside this port.

A kind registers itself once, in the composition root's kind registry; nothing else
enumerates kinds by name.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from shared.dependents._facts import KeyAccessFacts
from shared.dependents._models import DependentResource
from shared.dependents._rules import CMK_RULES, VerdictRules


@runtime_checkable
class DependentInventory(Protocol):
    async def list_accounts(self) -> Sequence[DependentResource]:
        """Every tracked resource of the kind (Key Vault key source) in the configured scope.

        Raises:
            ServiceError: ARM refused or failed (``transient`` says whether to retry).
        """
        ...


@runtime_checkable
class DependentWriter(Protocol):
    async def set_key_version(self, account: DependentResource, version: str) -> None:
        """Point the resource at ``version`` of the key it already uses."""
        ...

    async def set_tags(self, resource_id: str, tags: Mapping[str, str]) -> None:
        """Replace the resource's tags with ``tags`` (already merged with the owner's)."""
        ...


@runtime_checkable
class KeyAccessReader(Protocol):
    async def read(self, account: DependentResource) -> KeyAccessFacts:
        """Gather facts for one resource. Throttling and unreachable vaults are reported in
        ``KeyAccessFacts.lookup``, not raised, so one bad vault does not stop a sweep.

        A reader that shares reads between accounts (vault properties, role and deny
        assignments, role definitions) also has ``begin_pass()``, which the service calls
        before each pass (a sweep, or one event's accounts) so that a change since the last
        pass is seen now; optional, like the inventories' ``invalidate``."""
        ...


@dataclass(frozen=True)
class KindLabels:
    """Every name users see for a kind; changing one is a breaking change for them.

    Attributes:
        noun: what one resource is called in log lines (``Face account``).
        event_type_prefix: outgoing CloudEvent types are ``{prefix}.{change}``
            (``Keyward.FaceAccount`` gives ``Keyward.FaceAccount.KeyAccessLost``).
        event_source: the outgoing CloudEvents' ``source`` (``/keyward/face-accounts``).
        flag_partition: the state table partition of the kind's flag records (``face``).
        status_key: the key of the kind's flags in ``GET /api/status`` (``face_flags``).
    """

    noun: str
    event_type_prefix: str
    event_source: str
    flag_partition: str
    status_key: str


@dataclass(frozen=True)
class DependentKind:
    """One kind of key-dependent resource, bound to its adapters.

    Attributes:
        name: the registry name (``face``), also the settings' kind.
        labels: the names users see.
        inventory: lists the kind's resources.
        writer: re-points and tags them.
        rules: the keys the kind's service accepts (:data:`CMK_RULES` unless it differs).
    """

    name: str
    labels: KindLabels
    inventory: DependentInventory
    writer: DependentWriter
    rules: VerdictRules = CMK_RULES
