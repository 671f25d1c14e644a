"""One scenario's world: real stores on Azurite, local key versions, keyward's own services.

Real parts: Azurite (one per run; a fresh DEK table, state table and blob container per
scenario), keyward's Table and Blob DEK stores, its state-table job store, retired-version
record and event ledger, the admin service (verdict, retire), the planner and the rewrap
worker service, azure-storage-blob client-side encryption for the blobs. The vault is the
in-process ``devtools.local_keys`` source by default: the campaign is about what keyward
counts and writes, not about the vault's wire protocol, and that keeps 500 scenarios within
minutes; ``--vault emulator`` runs the same scenarios on keyward's emulator through the real
Key Vault adapter (``_vaults``). Applications are simulated by writing DEKs and blobs with the
SDKs directly, under whatever version (and spelling of the key id) they hold.
"""

from __future__ import annotations

import uuid
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta

from azure.data.tables.aio import TableServiceClient
from azure.storage.blob import BlobServiceClient, ContainerClient
from azure.storage.blob.aio import ContainerClient as AsyncContainerClient

from devtools.blob_kek import BlobKeyEncryptionKey
from shared.adapters.dek_blob import BlobDekStore
from shared.adapters.dek_table import TableDekStore
from shared.adapters.retired_versions import TableRetiredVersions
from shared.adapters.table_state import EventLedger, TableJobStore
from shared.crypto import DataKey, LocalRsaWrapper, WrapAlgorithm
from shared.rewrap import EngineSettings, ShardMessage
from shared.services._planner import RewrapPlanner
from shared.services._ports import FlagsPage
from shared.services.admin import AdminService
from shared.services.rewrap_worker import RewrapWorkerService
from shared.stores import DekStore, NewDek
from tests.campaign._vaults import Vault


def spellings(key_ref: str) -> tuple[str, ...]:
    """Spellings applications use for the same key (Key Vault names are case-insensitive)."""
    origin, _, name = key_ref.partition("/keys/")
    scheme, _, host = origin.partition("://")
    return (
        key_ref,
        f"{origin}/keys/{name.capitalize()}",
        f"{scheme}://{host.upper()}/keys/{name.upper()}",
    )


SETTINGS = EngineSettings(page_size=4, workers=4, rate_ceiling=1_000_000)
#: The campaign has no application writers caching a "newest" version, so the verdict's
#: wait for late writers (``shared/rewrap/_superseded.py``, tested on its own) is turned off:
#: a day back, because earlier tests may have moved the shared emulator's clock ahead, which
#: dates its new versions in our future (as tests/e2e/conftest.py does).
NO_LATE_WRITERS = timedelta(days=-1)


class Queue:
    """The shard queue: messages in order (tests reorder and duplicate them on purpose)."""

    def __init__(self) -> None:
        self.messages: list[ShardMessage] = []

    async def send(self, message: ShardMessage, *, delay_seconds: int = 0) -> None:
        self.messages.append(message)


@dataclass
class Dependents:
    """Key-dependent resources (Face accounts) pinned to versions, as the admin sees them."""

    pinned: dict[str, list[str]] = field(default_factory=dict)

    async def pinned_versions(self, key_ref: str) -> Mapping[str, Sequence[str]]:
        return {version: list(ids) for version, ids in self.pinned.items() if ids}

    async def status(self, limit: int) -> Mapping[str, FlagsPage]:
        return {}


class World:
    """Everything one scenario touches; :meth:`close` deletes its tables and container."""

    def __init__(self, connection_string: str, vault: Vault) -> None:
        self.connection_string = connection_string
        self.vault = vault
        self.key_ref = vault.key_ref
        self.spellings = spellings(vault.key_ref)
        suffix = uuid.uuid4().hex[:16]
        self.table_name, self.state_name = f"deks{suffix}", f"state{suffix}"
        self.container_name = f"blobs{suffix}"
        self.source = vault.keys
        self.versions: list[str] = []
        self.disabled: set[str] = set()
        self.queue = Queue()
        self.dependents = Dependents()
        #: What the applications wrote, for the oracle: ref -> plaintext (table DEKs), blob
        #: name -> content, (blob name, snapshot) -> content.
        self.table_plain: dict[str, bytes] = {}
        self.blob_content: dict[str, bytes] = {}
        self.snapshot_content: dict[tuple[str, str], bytes] = {}

    async def open(self) -> None:
        self.tables = TableServiceClient.from_connection_string(self.connection_string)
        await self.tables.create_table(self.table_name)
        state = await self.tables.create_table(self.state_name)
        self.state_table = state
        blobs = BlobServiceClient.from_connection_string(self.connection_string)
        self.sync_container: ContainerClient = blobs.get_container_client(self.container_name)
        self.sync_container.create_container()
        self.table_store = TableDekStore(self.tables.get_table_client(self.table_name))
        self.blob_store = BlobDekStore(
            AsyncContainerClient.from_connection_string(self.connection_string, self.container_name)
        )
        self.stores: dict[str, DekStore] = {
            self.table_store.name: self.table_store,
            self.blob_store.name: self.blob_store,
        }
        self.retired = TableRetiredVersions(state)
        allow = self.vault.allow
        self.admin = AdminService(
            allow_list=allow, stores=self.stores, job_store=self.job_store, keys=self.source,
            planner=RewrapPlanner(self.source, self.queue, list(self.stores)),
            ledger=EventLedger(state), dependents=self.dependents, retired=self.retired,
            engine_settings=SETTINGS, superseded_wait=NO_LATE_WRITERS,
        )  # fmt: skip
        self.planner = RewrapPlanner(self.source, self.queue, list(self.stores))
        self.worker = RewrapWorkerService(
            allow_list=allow, stores=self.stores, job_store=self.job_store, keys=self.source,
            queue=self.queue, engine_settings=SETTINGS, max_dequeue_count=5,
            slice_seconds=0.05, retired=self.retired,
        )  # fmt: skip

    def job_store(self, shard: str) -> TableJobStore:
        return TableJobStore(self.state_table, shard)

    def rotate(self) -> str:
        """A new newest version of the key (as a rotation in the vault would make)."""
        version = self.vault.rotate()
        self.versions.append(version)
        return version

    def disable(self, version: str) -> None:
        """The operator disables ``version`` in the vault (acting on a "safe" verdict)."""
        self.vault.disable(version)
        self.disabled.add(version)

    @property
    def enabled_versions(self) -> list[str]:
        return [v for v in self.versions if v not in self.disabled]

    def wrapper(self, key_id: str) -> LocalRsaWrapper:
        return self.vault.wrapper(key_id)

    async def write_table(self, version: str, spelling: str, count: int) -> None:
        """An application inserts ``count`` DEKs wrapped under ``version`` of ``spelling``."""
        deks = []
        for _ in range(count):
            dek_id = uuid.uuid4().hex[:12]
            wrapper = self.wrapper(f"{spelling}/{version}")
            with DataKey.generate() as dek:
                deks.append(NewDek("app", dek_id, wrapper.key_id, WrapAlgorithm.RSA_OAEP_256,
                                   wrapper.wrap(dek), dek.kcv))  # fmt: skip
                self.table_plain[f"app/{dek_id}"] = dek.reveal()
        await self.table_store.insert_batch(deks)

    def write_blob(self, name: str, version: str, spelling: str, *, snapshot_first: bool) -> None:
        """An application uploads (or overwrites) a client-side encrypted blob."""
        if snapshot_first and name in self.blob_content:
            self.snapshot(name)
        data = uuid.uuid4().bytes * 8
        blob = self.sync_container.get_blob_client(name)
        blob.require_encryption = True
        blob.encryption_version = "2.0"
        blob.key_encryption_key = BlobKeyEncryptionKey(self.wrapper(f"{spelling}/{version}"))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            blob.upload_blob(data, overwrite=True, metadata={"owner": "app"})
        self.blob_content[name] = data

    def snapshot(self, name: str) -> None:
        answer = self.sync_container.get_blob_client(name).create_snapshot()
        self.snapshot_content[(name, str(answer["snapshot"]))] = self.blob_content[name]

    async def close(self) -> None:
        for store in self.stores.values():
            await store.close()
        await self.tables.delete_table(self.table_name)
        await self.tables.delete_table(self.state_name)
        await self.state_table.close()
        await self.tables.close()
        self.sync_container.delete_container()
        self.sync_container.close()
        await self.vault.close()
