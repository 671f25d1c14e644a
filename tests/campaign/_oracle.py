"""The campaign's oracle and its figures.

After every disable and at the end of each scenario, every DEK, blob and snapshot the
applications wrote must still decrypt (DEKs: unwrap in the vault and compare with the
plaintext they were made from; blobs and snapshots: azure-storage-blob downloads and
decrypts them, compared byte for byte), and no pinned resource's version may be disabled.
After every worker slice and crash, no store may hold a previous wrap under a version whose
retire call answered "done": only keyward writes previous wraps, and it must not write under
a retired version.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

from tests.campaign._vaults import VaultKek
from tests.campaign._world import World


@dataclass(frozen=True)
class Features:
    """What the stores can show today (probed once per run, see ``_probe``)."""

    spellings: bool
    immutable_copies: bool


@dataclass
class Figures:
    scenarios: int = 0
    steps: int = 0
    verdicts_checked: int = 0
    safe_verdicts_acted_on: int = 0
    deks_checked: int = 0
    deks_lost: int = 0
    retire_done: int = 0
    retire_refused: int = 0
    retire_races: int = 0
    crashes: int = 0
    copies_deleted: int = 0
    #: Previous wraps found under a version after its retire said "done" (must be 0).
    retired_writes: int = 0
    #: DEKs under a retired version the engine reported instead of rewriting.
    refused_under_retired: int = 0
    lost: list[str] = field(default_factory=list)

    def line(self) -> str:
        return (
            f"scenarios={self.scenarios} steps={self.steps} "
            f"verdicts_checked={self.verdicts_checked} "
            f"safe_verdicts_acted_on={self.safe_verdicts_acted_on} "
            f"retire_done={self.retire_done} retire_refused={self.retire_refused} "
            f"retire_races={self.retire_races} crashes={self.crashes} "
            f"copies_deleted_by_owner={self.copies_deleted} "
            f"deks_checked={self.deks_checked} deks_lost={self.deks_lost} "
            f"writes_under_retired={self.retired_writes} "
            f"refused_under_retired={self.refused_under_retired}"
        )


class Oracle:
    """Checks one scenario's world; counts into the run's figures."""

    def __init__(self, world: World, figures: Figures) -> None:
        self._world, self._figures = world, figures
        #: Versions a retire call answered "done" for: keyward must never write under them.
        self.retired_done: set[str] = set()
        self._retired_writes: set[str] = set()
        self._lost: set[str] = set()

    async def check(self) -> None:
        """The oracle: everything the applications wrote still opens."""
        world = self._world
        for ref, plain in world.table_plain.items():
            self._figures.deks_checked += 1
            details = await world.table_store.get(ref)
            if details is None or not await self._opens(
                details.record.key_id, details.record.wrapped, plain
            ):
                self._lose(f"table {ref}")
        for name, content in world.blob_content.items():
            self._figures.deks_checked += 1
            if self._download(name, None) != content:
                self._lose(f"blob {name}")
        for (name, snapshot), content in world.snapshot_content.items():
            self._figures.deks_checked += 1
            if self._download(name, snapshot) != content:
                self._lose(f"snapshot {name}@{snapshot}")
        await self.check_no_writes_under_retired()
        for version, resources in world.dependents.pinned.items():
            if resources and version in world.disabled:
                self._lose(f"pinned resource on {version}")

    async def check_no_writes_under_retired(self) -> None:
        """After a retire said "done", no store holds a previous wrap under that version:
        only keyward writes previous wraps, and it must not write under a retired version."""
        if not self.retired_done:
            return
        for shard, store in self._world.stores.items():
            for count in await store.version_counts(self._world.key_ref):
                version = count.key_id.rsplit("/", 1)[1].lower()
                what = f"{shard}: previous wraps under retired {version}"
                if (
                    version in self.retired_done
                    and count.previous
                    and what not in self._retired_writes
                ):
                    self._retired_writes.add(what)
                    self._figures.retired_writes += 1
                    self._figures.lost.append(what)

    def _lose(self, what: str) -> None:
        if what not in self._lost:
            self._lost.add(what)
            self._figures.deks_lost += 1
            self._figures.lost.append(what)

    async def _opens(self, key_id: str, wrapped: bytes, plain: bytes) -> bool:
        return self._world.vault.unwrap(key_id, wrapped, "RSA-OAEP-256") == plain

    def _download(self, name: str, snapshot: str | None) -> bytes | None:
        world = self._world

        def resolve(kid: str) -> VaultKek:
            return VaultKek(world.vault, kid)

        blob = world.sync_container.get_blob_client(name, snapshot=snapshot)
        blob.require_encryption = True
        blob.key_resolver_function = resolve
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return bytes(blob.download_blob().readall())
        except Exception:
            return None
