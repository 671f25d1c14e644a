"""Facts about an account's key, gathered by adapters and judged by ``evaluate``.

Adapters (Key Vault, ARM vaults, role assignments) fill these in and do nothing else; the
verdict is a pure function of them. A fact the adapter could not learn is ``None``, never a
guess: ``evaluate`` turns missing facts into ``UNKNOWN``, not into ``OK``.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from shared.dependents._grants import RbacFacts
from shared.dependents._network import VaultNetworkFacts


class LookupStatus(enum.StrEnum):
    """How gathering went. Anything but OK makes the verdict UNKNOWN."""

    OK = "OK"
    UNREACHABLE = "UNREACHABLE"
    THROTTLED = "THROTTLED"


class KeyPresence(enum.StrEnum):
    PRESENT = "PRESENT"
    MISSING = "MISSING"
    DELETED = "DELETED"  # soft-deleted, still recoverable
    PURGED = "PURGED"  # keyward saw it before; the vault no longer has it, deleted or not


@dataclass(frozen=True)
class KeyVersionFacts:
    """One version's attributes as Key Vault reports them.

    ``key_ops`` is ``None`` when unknown; an empty tuple means the version allows nothing.
    """

    version: str
    enabled: bool
    nbf: datetime | None = None
    exp: datetime | None = None
    key_ops: tuple[str, ...] | None = ("wrapKey", "unwrapKey")
    kty: str | None = "RSA"
    key_size: int | None = 2048
    created: datetime | None = None

    def allows(self, *ops: str) -> bool:
        have = {op.lower() for op in self.key_ops or ()}
        return all(op.lower() in have for op in ops)


@dataclass(frozen=True)
class KeyFacts:
    """The key an account points at.

    Attributes:
        presence: present, missing, soft-deleted or purged.
        kid: the key id Key Vault returned (vault host as Key Vault spells it), if present.
        current_version: the newest version, if present.
        versions: every version the vault lists (must include a pinned version if it exists).
    """

    presence: KeyPresence
    kid: str | None = None
    current_version: str | None = None
    versions: Sequence[KeyVersionFacts] = ()

    def version(self, version: str | None) -> KeyVersionFacts | None:
        if version is None:
            return None
        wanted = version.lower()
        return next((v for v in self.versions if v.version.lower() == wanted), None)

    @property
    def current(self) -> KeyVersionFacts | None:
        return self.version(self.current_version)


@dataclass(frozen=True)
class VaultFacts:
    """ARM's view of the vault. ``rbac`` is ``enableRbacAuthorization``; ``None``: unknown.

    ``network``: the vault's network rules; ``None`` when not gathered (then not judged).
    """

    exists: bool
    soft_delete: bool | None = True
    purge_protection: bool | None = True
    rbac: bool | None = None
    network: VaultNetworkFacts | None = None


@dataclass(frozen=True)
class IdentityAccess:
    """What the account's identity may do with the key.

    Attributes:
        key_permissions: key permissions granted by access policies naming the identity
            (``get``, ``wrapKey``...); used when the vault is in access-policy mode.
        role_definition_ids: role definitions assigned to the identity at the key's scope or
            any scope above it (vault, resource group, subscription); full ARM ids or GUIDs.
            Read as direct, unconditioned assignments of the identity; used only when
            ``rbac`` is ``None``.
        rbac: the full picture (every assignment at the key's scope or above, for any
            principal, with conditions; role definitions; deny assignments), judged by
            :func:`shared.dependents._grants.judge_grants`.
    """

    key_permissions: frozenset[str] = frozenset()
    role_definition_ids: frozenset[str] = frozenset()
    rbac: RbacFacts | None = None


@dataclass(frozen=True)
class KeyAccessFacts:
    """Everything ``evaluate`` looks at for one account."""

    lookup: LookupStatus = LookupStatus.OK
    vault: VaultFacts | None = None
    key: KeyFacts | None = None
    access: IdentityAccess | None = None
    detail: str = ""
