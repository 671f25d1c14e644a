"""Retirement report: which old key versions still have DEKs (or other users) depending on them.

The transit life cycle is rotate, rewrap everything, then retire old versions. A version is
"safe to disable" only when nothing references it: no DEK is wrapped under it, none keeps it
as its previous wrap, no store-specific count is non-zero, and no pinned resource (a Face
account configured with that exact version, supplied by the Face work) names it. The newest
enabled version is never safe to disable: it is what DEKs are being moved to.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime

from shared.errors import KeyNotFoundError
from shared.rewrap._ports import KeyVersionSource
from shared.rewrap._target import normalize_key_ref
from shared.stores import DekStore


@dataclass(frozen=True)
class VersionRetirement:
    """One key version's remaining dependents.

    Attributes:
        version: the 32-hex version.
        current: DEKs wrapped under it now.
        previous: DEKs keeping it as their previous wrap.
        unreadable: of ``current``, DEKs marked unreadable (the vault refused their unwrap).
        extra: store-specific counts (each a blocker when non-zero).
        pinned: ids of resources pinned to this version (e.g. Face accounts).
        enabled: the vault's flag; ``None`` when the vault no longer lists the version.
        newest: whether this is the key's newest enabled version.
    """

    version: str
    current: int = 0
    previous: int = 0
    unreadable: int = 0
    extra: dict[str, int] = field(default_factory=dict)
    pinned: tuple[str, ...] = ()
    enabled: bool | None = None
    newest: bool = False

    @property
    def blockers(self) -> list[str]:
        """Why this version may not be disabled yet (empty: safe)."""
        reasons = []
        if self.newest:
            reasons.append("newest enabled version")
        if self.current:
            reasons.append(f"{self.current} DEKs wrapped under it")
        if self.previous:
            reasons.append(f"{self.previous} DEKs keep it as previous wrap")
        reasons.extend(f"{count} {name}" for name, count in sorted(self.extra.items()) if count)
        if self.pinned:
            reasons.append(f"{len(self.pinned)} resources pinned to it")
        return reasons

    @property
    def safe_to_disable(self) -> bool:
        return not self.blockers


@dataclass(frozen=True)
class RetirementReport:
    """Per version of one key, what still depends on it, oldest first when dates are known."""

    key_ref: str
    newest_enabled: str | None
    versions: tuple[VersionRetirement, ...]

    def version(self, version: str) -> VersionRetirement:
        """The entry for ``version``; raises KeyError when the report has none."""
        wanted = version.lower()
        for entry in self.versions:
            if entry.version == wanted:
                return entry
        raise KeyError(version)


async def retirement_report(
    store: DekStore,
    key_ref: str,
    *,
    keys: KeyVersionSource | None = None,
    pinned: Mapping[str, Sequence[str]] | None = None,
) -> RetirementReport:
    """Count what references each version of ``key_ref``.

    Args:
        store: the DEK store (its ``version_counts``).
        key_ref: the unversioned key id.
        keys: the vault, for enabled flags, creation order and the newest enabled version;
            without it, no version is marked newest (the caller knows which one is).
        pinned: version -> ids of resources pinned to it (an extra blocker per version).

    Raises:
        ServiceError: the store or the vault could not be read.
    """
    key_ref = normalize_key_ref(key_ref)
    prefix = key_ref.lower() + "/"
    entries: dict[str, VersionRetirement] = {}
    for count in await store.version_counts(key_ref):
        if not count.key_id.lower().startswith(prefix):
            continue
        version = count.key_id.lower()[len(prefix) :]
        entries[version] = VersionRetirement(
            version, count.current, count.previous, count.unreadable, dict(count.extra)
        )
    created: dict[str, datetime] = {}
    newest: str | None = None
    if keys is not None:
        try:
            newest = (await keys.newest_enabled_version(key_ref)).lower()
        except KeyNotFoundError:
            newest = None
        for info in await keys.versions(key_ref):
            version = info.version.lower()
            entry = entries.get(version, VersionRetirement(version))
            entries[version] = replace(entry, enabled=info.enabled, newest=version == newest)
            created[version] = info.created
    for pinned_version, resources in (pinned or {}).items():
        version = pinned_version.lower()
        entry = entries.get(version, VersionRetirement(version))
        entries[version] = replace(entry, pinned=tuple(resources))
    known = sorted((v for v in entries if v in created), key=lambda v: created[v])
    unknown = sorted(v for v in entries if v not in created)
    return RetirementReport(key_ref, newest, tuple(entries[v] for v in known + unknown))
