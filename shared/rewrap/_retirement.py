"""The retirement verdict's shape: per key version, every blocker by kind, with counts.

The transit life cycle is rotate, rewrap everything, then retire old versions. "Safe to
disable" is the one answer an operator acts on irreversibly, so a version is safe only when
every place keyward can see says nothing needs it:

* it is not the newest enabled version (what DEKs are being moved to);
* no DEK in any store is wrapped under it (under any spelling of the key id), and none keeps
  it as its previous wrap;
* no immutable copy holds a wrap under it (blob versions, snapshots, soft-deleted blobs: they
  cannot be rewrapped, only deleted or left to expire; listed by name so an owner can act);
* no store-specific count is non-zero, no key-dependent resource is pinned to it;
* no job of the key is running or pending (it may be writing wraps as we count);
* it was not superseded so recently that writers may still land wraps under it after the
  count began (``_superseded``: the count is "not yet" answerable, and says from when).

Where the version was retired through keyward and DEKs are found under it anyway (an
application wrote them after the retirement), the entry also carries an alert.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

#: Names listed per blocker (immutable copies, jobs, resources); the count is always whole.
MAX_LISTED_NAMES = 20
#: The version key, in a version -> pinned resources look-up, of resources that may use ANY
#: version of the key (they follow the latest and their service did not say which one they
#: use now): the verdict lists them under every version but the newest enabled one.
EVERY_OLDER_VERSION = "*"
#: The note of such a resource (``PinnedResource.note``), shown as the blocker's reason.
NOTE_VERSION_UNKNOWN = "follows the latest version; version in use unknown"
#: The note of a resource that follows the latest version and reports using this one.
NOTE_VERSION_IN_USE = "follows the latest version; uses this one now"


class PinnedResource(str):
    """A resource pinned to a key version: its ARM id (the string itself, so everything that
    counts, compares or stores pinned ids keeps working) plus what the report shows.

    Attributes:
        kind: the watched kind (``face``, ``cognitive``, ``storage``; ``""``: unknown, e.g.
            ids given to the CLI's ``--pinned``).
        resource_kind: the resource's own kind as ARM names it (``OpenAI``, ``StorageV2``).
        name: the resource's name (the id's last segment when not given).
        note: why it counts when it is not pinned ("" for a pin): it follows the latest
            version and still uses this one (:data:`NOTE_VERSION_IN_USE`), or which one it
            uses is unknown (:data:`NOTE_VERSION_UNKNOWN`).
    """

    kind: str
    resource_kind: str
    name: str
    note: str

    def __new__(
        cls,
        resource_id: str,
        *,
        kind: str = "",
        resource_kind: str = "",
        name: str = "",
        note: str = "",
    ) -> PinnedResource:
        entry = super().__new__(cls, resource_id)
        entry.kind = kind
        entry.resource_kind = resource_kind
        entry.name = name or resource_id.rstrip("/").rsplit("/", 1)[-1]
        entry.note = note
        return entry

    @classmethod
    def of(cls, entry: str) -> PinnedResource:
        """``entry`` as a ``PinnedResource`` (a plain id gets an unknown kind)."""
        return entry if isinstance(entry, PinnedResource) else cls(entry)

    def to_dict(self) -> dict[str, str]:
        row = {"kind": self.kind, "resource_kind": self.resource_kind, "id": str(self),
               "name": self.name}  # fmt: skip
        if self.note:
            row["note"] = self.note
        return row


class BlockerKind(StrEnum):
    NEWEST = "newest_enabled_version"
    CURRENT = "current_wraps"
    PREVIOUS = "previous_wraps"
    IMMUTABLE = "immutable_copies"
    STORE = "store_specific"
    PINNED = "pinned_resources"
    JOBS = "unfinished_jobs"
    LATE_WRITERS = "late_writers"


@dataclass(frozen=True)
class Blocker:
    """One reason a version may not be disabled yet.

    Attributes:
        kind: what kind of dependent it is.
        count: how many (always the whole count).
        detail: the store-specific count's name, or where (per-store breakdown).
        names: a bounded list of names an owner can act on (copies, jobs, resources).
    """

    kind: BlockerKind
    count: int
    detail: str = ""
    names: tuple[str, ...] = ()

    def describe(self) -> str:
        text = {
            BlockerKind.NEWEST: "newest enabled version",
            BlockerKind.CURRENT: f"{self.count} DEKs wrapped under it",
            BlockerKind.PREVIOUS: f"{self.count} DEKs keep it as previous wrap",
            BlockerKind.IMMUTABLE: f"{self.count} immutable copies wrapped under it",
            BlockerKind.STORE: f"{self.count} {self.detail}",
            BlockerKind.PINNED: f"{self.count} resources pinned to it",
            BlockerKind.JOBS: f"{self.count} rewrap jobs of the key running or pending",
            BlockerKind.LATE_WRITERS: "superseded too recently: writers may still land wraps "
            f"under it; not yet answerable, ask again from {self.detail}",
        }[self.kind]
        if self.kind not in (BlockerKind.STORE, BlockerKind.LATE_WRITERS) and self.detail:
            text += f" ({self.detail})"
        return text

    def to_dict(self) -> dict[str, object]:
        return {
            "kind": self.kind.value,
            "count": self.count,
            "detail": self.detail,
            "names": list(self.names),
            "more": max(0, self.count - len(self.names)) if self.names else 0,
        }


@dataclass(frozen=True)
class VersionRetirement:
    """One key version's remaining dependents, totalled over every store.

    Attributes:
        version: the 32-hex version.
        current: DEKs wrapped under it now.
        previous: DEKs keeping it as their previous wrap.
        unreadable: of ``current``, DEKs marked unreadable (the vault refused their unwrap).
        extra: store-specific counts (each a blocker when non-zero).
        pinned: ids of resources pinned to this version (e.g. Face accounts).
        enabled: the vault's flag; ``None`` when the vault no longer lists the version.
        newest: whether this is the key's newest enabled version.
        copies: immutable copies (blob versions, snapshots, soft-deleted blobs) under it.
        copy_names: the first :data:`MAX_LISTED_NAMES` of them, by name.
        jobs: unfinished jobs of the key (they block every version of it).
        retired: recorded as retired through keyward.
        by_store: per store, ``(store, current, previous, copies)`` where any is non-zero.
        superseded_at: when the next newer enabled version became usable (``None``: none).
        answerable_at: from when a count of it can be trusted (``_superseded``).
        too_soon: the count began before ``answerable_at`` (a blocker: ask again then).
    """

    version: str
    current: int = 0
    previous: int = 0
    unreadable: int = 0
    extra: dict[str, int] = field(default_factory=dict)
    pinned: tuple[str, ...] = ()
    enabled: bool | None = None
    newest: bool = False
    copies: int = 0
    copy_names: tuple[str, ...] = ()
    jobs: tuple[str, ...] = ()
    retired: bool = False
    by_store: tuple[tuple[str, int, int, int], ...] = ()
    superseded_at: datetime | None = None
    answerable_at: datetime | None = None
    too_soon: bool = False

    def _where(self, column: int) -> str:
        parts = [f"{entry[0]}: {entry[column]}" for entry in self.by_store if entry[column]]
        return ", ".join(parts) if len(self.by_store) > 1 else ""

    @property
    def pinned_resources(self) -> tuple[PinnedResource, ...]:
        """Every resource pinned to this version, with its kind and name (all of them: the
        report lists each, the blocker only the first :data:`MAX_LISTED_NAMES`)."""
        return tuple(PinnedResource.of(entry) for entry in self.pinned)

    @property
    def blocker_list(self) -> list[Blocker]:
        """Every blocker by kind (empty: safe to disable)."""
        found: list[Blocker] = []
        if self.newest:
            found.append(Blocker(BlockerKind.NEWEST, 1))
        if self.current:
            found.append(Blocker(BlockerKind.CURRENT, self.current, self._where(1)))
        if self.previous:
            found.append(Blocker(BlockerKind.PREVIOUS, self.previous, self._where(2)))
        if self.copies:
            found.append(
                Blocker(BlockerKind.IMMUTABLE, self.copies, self._where(3), self.copy_names)
            )
        found.extend(
            Blocker(BlockerKind.STORE, count, name)
            for name, count in sorted(self.extra.items())
            if count
        )
        if self.pinned:
            pinned = self.pinned
            unknown = sum(1 for p in self.pinned_resources if p.note == NOTE_VERSION_UNKNOWN)
            why = f"{unknown} {NOTE_VERSION_UNKNOWN}" if unknown else ""
            found.append(Blocker(BlockerKind.PINNED, len(pinned), why, pinned[:MAX_LISTED_NAMES]))
        if self.jobs:
            jobs = self.jobs
            found.append(Blocker(BlockerKind.JOBS, len(jobs), "", jobs[:MAX_LISTED_NAMES]))
        if self.too_soon and self.answerable_at is not None:
            until = self.answerable_at.isoformat(timespec="seconds")
            found.append(Blocker(BlockerKind.LATE_WRITERS, 1, until))
        return found

    @property
    def blockers(self) -> list[str]:
        """Why this version may not be disabled yet, one line per blocker (empty: safe)."""
        return [blocker.describe() for blocker in self.blocker_list]

    @property
    def alerts(self) -> list[str]:
        """What went wrong after a retirement: wraps under a version keyward retired."""
        if not self.retired:
            return []
        found = []
        if self.current:
            found.append(f"{self.current} DEKs wrapped under this retired version")
        if self.copies:
            found.append(f"{self.copies} immutable copies wrapped under this retired version")
        return found

    @property
    def safe_to_disable(self) -> bool:
        return not self.blocker_list

    @property
    def status(self) -> str:
        """``safe_to_disable``, ``blocked``, or ``retired_in_use`` (an alert: see alerts)."""
        if self.alerts:
            return "retired_in_use"
        return "safe_to_disable" if self.safe_to_disable else "blocked"


@dataclass(frozen=True)
class RetirementReport:
    """Per version of one key, what still depends on it, oldest first when dates are known."""

    key_ref: str
    newest_enabled: str | None
    versions: tuple[VersionRetirement, ...]
    stores: tuple[str, ...] = ()
    #: Unfinished jobs of the key (each blocks every version) and the retired versions.
    jobs: tuple[str, ...] = ()
    retired: frozenset[str] = frozenset()

    def version(self, version: str) -> VersionRetirement:
        """The entry for ``version``; raises KeyError when the report has none."""
        wanted = version.lower()
        for entry in self.versions:
            if entry.version == wanted:
                return entry
        raise KeyError(version)

    def entry(self, version: str) -> VersionRetirement:
        """The entry for ``version``, or an empty one: nothing seen depends on it."""
        try:
            return self.version(version)
        except KeyError:
            wanted = version.lower()
            return VersionRetirement(wanted, jobs=self.jobs, retired=wanted in self.retired)
