"""The kind registry of key-dependent resources, and the one place their services are built.

A kind registers itself here, once (:data:`KINDS`): its name (the settings' kind, see
``shared.settings._specs.DEPENDENT_SPECS``), the names users see (:class:`KindLabels`), the
ARM type Resource Graph is asked for and the pure mapper that turns one resource into a
:class:`DependentResource`, how to build its per-subscription inventory (the fallback) and
writer, and its verdict rules when they differ from :data:`CMK_RULES`. Nothing else in keyward
enumerates kinds. The kinds today:

* ``face``: Cognitive Services accounts of kind ``Face`` (the default kind);
* ``cognitive``: every other Azure AI services account kind (OpenAI, SpeechServices,
  TextAnalytics, FormRecognizer, ComputerVision, AIServices...): one entry, the account's ARM
  kind kept on each resource, because they share one CMK shape, one writer and one rule set;
* ``storage``: storage accounts with a Key Vault key (an empty ``keyversion`` follows the
  latest version: never pinned, never re-pointed), RSA 2048, 3072 or 4096.

Which kinds are watched is ``KEYWARD_DEPENDENT_KINDS``. With ``KEYWARD_RESOURCE_GRAPH`` on
(the default) every watched kind reads its resources out of one shared
:class:`ResourceGraphInventory` (one paged query per sweep for all kinds and subscriptions,
cached ``KEYWARD_INVENTORY_CACHE_SECONDS``), falling back to its own per-subscription listing
where Resource Graph refuses.

Everything a kind's service needs besides its own adapters is shared, built once by the
composition root and handed in: the credential's ARM clients (:class:`ArmClients`, paced by
``KEYWARD_ARM_REQUESTS_PER_SECOND``), the Key Vault adapter, keyward's state table (each
kind's flags in its own partition) and one Event Grid publisher. Settings used: each kind's
``Settings.dependent(kind)`` (subscriptions, resource groups, re-point),
``expiry_warning_days``, ``eventgrid_topic_endpoint`` (unset: no events published, flags and
tags still kept), ``ca_bundle``, ``vault_allowlist``, ``resource_graph``,
``inventory_cache_seconds``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from azure.core.credentials import AzureKeyCredential
from azure.core.credentials_async import AsyncTokenCredential
from azure.data.tables.aio import TableClient

from shared.adapters.arm import ArmClients
from shared.adapters.arm_cognitive import RESOURCE_TYPE as COGNITIVE_TYPE
from shared.adapters.arm_cognitive import (
    AccountKinds,
    ArmCognitiveAccountWriter,
    ArmCognitiveInventory,
    cognitive_from_arm,
)
from shared.adapters.arm_face import FACE_KINDS, ArmFaceAccountWriter, ArmFaceInventory
from shared.adapters.arm_storage import RESOURCE_TYPE as STORAGE_TYPE
from shared.adapters.arm_storage import (
    ArmStorageAccountWriter,
    ArmStorageInventory,
    storage_from_arm,
)
from shared.adapters.eventgrid_publisher import EventGridFlagPublisher
from shared.adapters.flag_store import TableFlagStore
from shared.adapters.key_access import AzureKeyAccessReader
from shared.adapters.keyvault import AsyncKeyVaultAdapter
from shared.adapters.resource_graph import GraphKindInventory, ResourceGraphInventory
from shared.composition._clients import arm_clients, keyvault_adapter
from shared.dependents import (
    CMK_RULES,
    DependentInventory,
    DependentKind,
    DependentResource,
    DependentWriter,
    KindLabels,
    VerdictRules,
)
from shared.errors import ConfigurationError
from shared.services._all_dependents import AllDependents
from shared.services._dependent_effects import EffectRunner
from shared.services.dependents import DependentService
from shared.settings import DependentScope, Settings

Clock = Callable[[], datetime]
EventGridCredential = AsyncTokenCredential | AzureKeyCredential
#: Builds a kind's per-subscription ARM inventory and writer over the shared ARM clients.
AdapterFactory = Callable[[ArmClients, DependentScope], tuple[DependentInventory, DependentWriter]]
#: Maps one resource (ARM's REST JSON, or a Resource Graph row reshaped) to the kind's view.
Mapper = Callable[[Mapping[str, object]], DependentResource | None]


@dataclass(frozen=True)
class KindRegistration:
    """One kind in the registry: what differs from every other kind.

    Attributes:
        name: the settings' kind (``KEYWARD_DEPENDENT_KINDS``).
        labels: the names users see.
        adapters: the per-subscription inventory (Resource Graph's fallback) and the writer.
        resource_type: the ARM type Resource Graph is asked for (``""``: the kind is always
            listed per subscription).
        mapper: the pure mapping of one resource to the kind's ``DependentResource``.
        rules: the keys the kind's service accepts.
    """

    name: str
    labels: KindLabels
    adapters: AdapterFactory
    resource_type: str = ""
    mapper: Mapper | None = None
    rules: VerdictRules = CMK_RULES


def _face_adapters(
    arm: ArmClients, scope: DependentScope
) -> tuple[DependentInventory, DependentWriter]:
    inventory = ArmFaceInventory(arm, scope.subscriptions, resource_groups=scope.resource_groups)
    return inventory, ArmFaceAccountWriter(arm)


#: Every Azure AI services account kind but Face (Face has its own entry).
COGNITIVE_KINDS = AccountKinds(excluded=FACE_KINDS.only)


def _cognitive_adapters(
    arm: ArmClients, scope: DependentScope
) -> tuple[DependentInventory, DependentWriter]:
    inventory = ArmCognitiveInventory(
        arm, scope.subscriptions, resource_groups=scope.resource_groups, kinds=COGNITIVE_KINDS
    )
    return inventory, ArmCognitiveAccountWriter(arm)


def _storage_adapters(
    arm: ArmClients, scope: DependentScope
) -> tuple[DependentInventory, DependentWriter]:
    inventory = ArmStorageInventory(arm, scope.subscriptions, resource_groups=scope.resource_groups)
    return inventory, ArmStorageAccountWriter(arm)


def _face_mapper(resource: Mapping[str, object]) -> DependentResource | None:
    return cognitive_from_arm(resource, FACE_KINDS)


def _cognitive_mapper(resource: Mapping[str, object]) -> DependentResource | None:
    return cognitive_from_arm(resource, COGNITIVE_KINDS)


#: Azure Storage accepts RSA and RSA-HSM keys of 2048, 3072 and 4096 bits as its CMK.
STORAGE_RULES = VerdictRules(
    key_sizes=frozenset({2048, 3072, 4096}), accepted="RSA 2048, 3072 or 4096"
)

#: Every kind keyward can watch. Adding one: its adapter, one entry here, its settings entry.
KINDS: tuple[KindRegistration, ...] = (
    KindRegistration(
        name="face",
        labels=KindLabels(
            noun="Face account",
            event_type_prefix="Keyward.FaceAccount",
            event_source="/keyward/face-accounts",
            flag_partition="face",
            status_key="face_flags",
        ),
        adapters=_face_adapters,
        resource_type=COGNITIVE_TYPE,
        mapper=_face_mapper,
    ),
    KindRegistration(
        name="cognitive",
        labels=KindLabels(
            noun="Azure AI services account",
            event_type_prefix="Keyward.CognitiveAccount",
            event_source="/keyward/cognitive-accounts",
            flag_partition="cognitive",
            status_key="cognitive_flags",
        ),
        adapters=_cognitive_adapters,
        resource_type=COGNITIVE_TYPE,
        mapper=_cognitive_mapper,
    ),
    KindRegistration(
        name="storage",
        labels=KindLabels(
            noun="storage account",
            event_type_prefix="Keyward.StorageAccount",
            event_source="/keyward/storage-accounts",
            flag_partition="storage",
            status_key="storage_flags",
        ),
        adapters=_storage_adapters,
        resource_type=STORAGE_TYPE,
        mapper=storage_from_arm,
        rules=STORAGE_RULES,
    ),
)


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class SharedClients:
    """What the composition root built once and every kind's service shares.

    Attributes:
        credential: keyward's identity (ARM, Key Vault, Table storage, Event Grid).
        table: keyward's state table (each kind's flags in its own partition).
        keyvault: the Key Vault adapter (metadata reads only, here).
        arm: the ARM clients.
    """

    credential: AsyncTokenCredential
    table: TableClient
    keyvault: AsyncKeyVaultAdapter
    arm: ArmClients


def build_dependents(
    settings: Settings,
    clients: SharedClients,
    *,
    eventgrid_credential: EventGridCredential | None = None,
    clock: Clock | None = None,
    create_table: bool = False,
    kinds: Sequence[KindRegistration] = KINDS,
    owned: Sequence[object] = (),
) -> tuple[AllDependents, list[object]]:
    """The services of every configured kind, and what was built here for the caller to close.

    Args:
        settings: validated settings (see the module docstring for the ones used).
        clients: the shared clients.
        eventgrid_credential: the topic's key for development, or another token credential;
            ``clients.credential`` when omitted.
        clock: "now" for verdicts and leases (tests point it at the emulator's clock).
        create_table: create ``clients.table`` on first use (a table only tests use).
        kinds: the registry (tests may narrow it to one kind).
        owned: clients the services own: then each service's ``close`` closes them and
            what was built here (one kind only); otherwise the caller closes what it gets.
    """
    configured = [(k, settings.dependent(k.name)) for k in kinds]
    configured = [(k, scope) for k, scope in configured if scope.enabled]
    # The default kind's key is always shown (``face_flags: []`` when Face is off).
    status_keys = [k.labels.status_key for k in kinds[:1]]
    if not configured:
        return AllDependents((), status_keys=status_keys), []
    watched = [sub for _, scope in configured for sub in scope.subscriptions]
    graph = None
    graphed = [k for k, _ in configured if k.resource_type and k.mapper is not None]
    if settings.resource_graph and graphed:
        graph = ResourceGraphInventory(
            clients.arm,
            list(dict.fromkeys(watched)),
            [k.resource_type for k in graphed],
            cache_seconds=settings.inventory_cache_seconds,
        )
    reader = AzureKeyAccessReader(
        clients.arm,
        settings.vault_allowlist,
        clients.keyvault,
        subscriptions=list(dict.fromkeys(watched)),
    )
    publisher = None
    if settings.eventgrid_topic_endpoint:
        publisher = EventGridFlagPublisher(
            settings.eventgrid_topic_endpoint,
            eventgrid_credential or clients.credential,
            ca_bundle=settings.ca_bundle,
        )
    built: list[object] = [publisher] if publisher is not None else []
    services = []
    for registration, scope in configured:
        inventory, writer = registration.adapters(clients.arm, scope)
        if graph is not None and registration.resource_type and registration.mapper is not None:
            inventory = GraphKindInventory(
                graph,
                registration.mapper,
                inventory,
                subscriptions=scope.subscriptions,
                resource_groups=scope.resource_groups,
            )
        labels = registration.labels
        kind = DependentKind(registration.name, labels, inventory, writer, registration.rules)
        store = TableFlagStore(
            clients.table, partition=labels.flag_partition, create_table=create_table
        )
        effects = EffectRunner(store, writer, publisher, labels=labels, clock=clock or _utc_now)
        services.append(
            DependentService(
                kind,
                reader,
                store,
                effects,
                allow_list=settings.vault_allowlist,
                repoint=scope.repoint,
                repoint_setting=scope.repoint_setting,
                warning_window=settings.expiry_warning_window,
                clock=clock,
                closers=[*built, *owned] if owned else (),
            )
        )
    return AllDependents(services, status_keys=status_keys, graph=graph), built


def build_dependent_service(
    settings: Settings,
    credential: AsyncTokenCredential,
    *,
    table: TableClient,
    kind: str = "face",
    eventgrid_credential: EventGridCredential | None = None,
    clock: Clock | None = None,
) -> DependentService:
    """One kind's service with clients of its own, closed by its ``close`` (tests; the app
    builds every kind once through :class:`AppContext`).

    Args:
        settings: validated settings; the kind must be configured.
        credential: keyward's identity for ARM, Key Vault and (by default) Event Grid.
        table: the flag table (created on first use), closed with the service.
        kind: the registry name.
        eventgrid_credential, clock: as for :func:`build_dependents`.

    Raises:
        ConfigurationError: no such kind, or its settings name no subscription.
    """
    registration = [k for k in KINDS if k.name == kind]
    keyvault = keyvault_adapter(settings, credential)
    arm = arm_clients(settings, credential)
    dependents, _ = build_dependents(
        settings,
        SharedClients(credential, table, keyvault, arm),
        eventgrid_credential=eventgrid_credential,
        clock=clock,
        create_table=True,
        kinds=registration,
        owned=[keyvault, arm, table],
    )
    if not dependents.services:
        raise ConfigurationError(f"{kind!r}: no such kind, or no subscriptions configured")
    return dependents.services[0]
