"""Build the Face service and its adapters from :class:`shared.settings.Settings`.

Settings used: ``face_subscriptions`` and ``face_resource_groups`` (inventory and vault
search), ``face_repoint``, ``expiry_warning_days``, ``eventgrid_topic_endpoint`` (unset: no
events published, flags and tags still kept), ``arm_endpoint``, ``ca_bundle`` (the emulator's
CA for ARM, Key Vault and Event Grid), ``vault_allowlist`` (checked before any Key Vault
call) and ``storage`` (flags live in keyward's state table, partition ``face``).

No network call is made here; clients connect on first use.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from azure.core.credentials import AzureKeyCredential
from azure.core.credentials_async import AsyncTokenCredential
from azure.data.tables.aio import TableClient

from shared.adapters.arm_face import ArmFaceAccountWriter, ArmFaceInventory, management_kwargs
from shared.adapters.eventgrid_publisher import EventGridFlagPublisher
from shared.adapters.flag_store import TableFlagStore
from shared.adapters.key_access import AzureKeyAccessReader
from shared.adapters.keyvault import AsyncKeyVaultAdapter
from shared.errors import ConfigurationError
from shared.services._face_effects import EffectRunner
from shared.settings import Settings

if TYPE_CHECKING:
    from shared.services.face import FaceService


def _utc_now() -> datetime:
    return datetime.now(UTC)


#: keyward's own state table (shared with job checkpoints and the event ledger).
STATE_TABLE = "keywardstate"


def flag_table(settings: Settings, credential: AsyncTokenCredential) -> TableClient:
    """The state table: Azurite's dev connection string, or the table URL with identity.

    Raises:
        ConfigurationError: the storage setting gives neither.
    """
    storage = settings.storage
    if storage.connection_string is not None:
        return TableClient.from_connection_string(storage.connection_string, STATE_TABLE)
    if storage.table_url is None:
        raise ConfigurationError(f"{storage.connection_setting}: no table service URL")
    return TableClient(storage.table_url, STATE_TABLE, credential=credential)


def build_face_service(
    settings: Settings,
    credential: AsyncTokenCredential,
    *,
    eventgrid_credential: AsyncTokenCredential | AzureKeyCredential | None = None,
    table: TableClient | None = None,
    clock: Callable[[], datetime] | None = None,
) -> FaceService:
    """A :class:`FaceService` with every adapter built from ``settings``.

    Args:
        settings: validated settings (see the module docstring for the ones used).
        credential: keyward's identity for ARM, Key Vault, Table storage and (by default)
            Event Grid.
        eventgrid_credential: the topic's key for development (``AzureKeyCredential``), or
            another token credential; ``credential`` when omitted.
        table: the flag table (tests); built from ``settings.storage`` when omitted.
        clock: "now" for verdicts (tests point it at the emulator's clock).

    Raises:
        ConfigurationError: storage cannot be reached with these settings.
    """
    from shared.services.face import FaceService

    arm = management_kwargs(settings.arm_endpoint, settings.ca_bundle)
    keyvault = AsyncKeyVaultAdapter(
        credential, settings.vault_allowlist, ca_bundle=settings.ca_bundle
    )
    inventory = ArmFaceInventory(
        credential,
        settings.face_subscriptions,
        resource_groups=settings.face_resource_groups,
        client_kwargs=arm,
    )
    reader = AzureKeyAccessReader(
        credential,
        settings.vault_allowlist,
        keyvault,
        subscriptions=settings.face_subscriptions,
        client_kwargs=arm,
    )
    writer = ArmFaceAccountWriter(credential, client_kwargs=arm)
    store = TableFlagStore(table if table is not None else flag_table(settings, credential))
    publisher = None
    if settings.eventgrid_topic_endpoint:
        publisher = EventGridFlagPublisher(
            settings.eventgrid_topic_endpoint,
            eventgrid_credential or credential,
            ca_bundle=settings.ca_bundle,
        )
    return FaceService(
        inventory,
        reader,
        writer,
        store,
        EffectRunner(store, writer, publisher, clock=clock or _utc_now),
        allow_list=settings.vault_allowlist,
        repoint=settings.face_repoint,
        warning_window=settings.expiry_warning_window,
        clock=clock,
        closers=[c for c in (inventory, reader, writer, keyvault, store, publisher) if c],
    )
