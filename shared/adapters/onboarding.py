"""ARM for vault onboarding: Event Grid system topics and event subscriptions
(azure-mgmt-eventgrid), role assignments (azure-mgmt-authorization) and vaults
(azure-mgmt-keyvault), as :class:`shared.services.onboarding.OnboardingArm`; and
:class:`StorageNameProbe`, whether keyward's tables, queue and container exist.

Every SDK error goes through ``_azure_errors.translated``; a 404 on a read is "absent"
(``None``), never an error. Clients are the composition root's :class:`ArmClients`.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from azure.core.exceptions import ResourceNotFoundError
from azure.mgmt.authorization.aio import AuthorizationManagementClient
from azure.mgmt.authorization.v2022_04_01.models import RoleAssignmentCreateParameters
from azure.mgmt.eventgrid.aio import EventGridManagementClient
from azure.mgmt.eventgrid.models import (
    AzureFunctionEventSubscriptionDestination,
    EventSubscription,
    EventSubscriptionFilter,
    RetryPolicy,
    StorageBlobDeadLetterDestination,
    StringInAdvancedFilter,
    SystemTopic,
)
from azure.mgmt.keyvault.aio import KeyVaultManagementClient
from azure.mgmt.keyvault.models import (
    AccessPolicyEntry,
    Permissions,
    VaultAccessPolicyParameters,
    VaultAccessPolicyProperties,
)

from shared.adapters._azure_errors import translated
from shared.adapters.arm import ArmClients
from shared.onboarding import (
    MANAGED_TAG,
    VAULT_TOPIC_TYPE,
    AdvancedFilter,
    DeadLetterTarget,
    FoundAssignment,
    FoundSubscription,
    Role,
    SubscriptionSpec,
    TopicRef,
    VaultRef,
)

#: The "Event Grid schema" delivery: on_key_vault_event reads both, Azure's default is this.
DELIVERY_SCHEMA = "EventGridSchema"


def _parts(arm_id: str) -> list[str]:
    return arm_id.strip("/").split("/")


class ArmOnboarding:
    """:class:`shared.services.onboarding.OnboardingArm` over the management SDKs."""

    def __init__(self, arm: ArmClients) -> None:
        self._arm = arm

    def _grid(self, subscription_id: str) -> EventGridManagementClient:
        return self._arm.get(EventGridManagementClient, subscription_id)

    def _vaults(self, subscription_id: str) -> KeyVaultManagementClient:
        return self._arm.get(KeyVaultManagementClient, subscription_id)

    def _auth(self, scope: str) -> AuthorizationManagementClient:
        return self._arm.get(AuthorizationManagementClient, _parts(scope)[1])

    # --- vaults ---------------------------------------------------------------------------

    async def find_vault(self, subscription_id: str, name: str) -> VaultRef | None:
        with translated("list key vaults"):
            async for vault in self._vaults(subscription_id).vaults.list_by_subscription():
                if (vault.name or "").lower() == name.lower():
                    parts = _parts(vault.id or "")
                    props = vault.properties
                    return VaultRef(
                        name=vault.name or name,
                        arm_id=vault.id or "",
                        subscription_id=parts[1],
                        resource_group=parts[3],
                        location=vault.location or "",
                        rbac=bool(props and props.enable_rbac_authorization),
                    )
        return None

    async def _vault_model(self, vault: VaultRef) -> Any:
        with translated(f"get key vault {vault.name}"):
            return await self._vaults(vault.subscription_id).vaults.get(
                vault.resource_group, vault.name
            )

    async def key_permissions(self, vault: VaultRef, principal_id: str) -> set[str]:
        model = await self._vault_model(vault)
        found: set[str] = set()
        for entry in (model.properties.access_policies if model.properties else None) or []:
            if (entry.object_id or "").lower() == principal_id.lower() and entry.permissions:
                found.update(
                    str(getattr(p, "value", p)).lower()
                    for p in entry.permissions.keys_property or []
                )
        return found

    async def change_key_permissions(
        self, vault: VaultRef, principal_id: str, permissions: Sequence[str], *, add: bool
    ) -> None:
        model = await self._vault_model(vault)
        entry = AccessPolicyEntry(
            tenant_id=model.properties.tenant_id,
            object_id=principal_id,
            permissions=Permissions(keys_property=list(permissions)),
        )
        parameters = VaultAccessPolicyParameters(
            properties=VaultAccessPolicyProperties(access_policies=[entry])
        )
        kind = "add" if add else "remove"
        with translated(f"{kind} access policy on {vault.name}"):
            await self._vaults(vault.subscription_id).vaults.update_access_policy(
                vault.resource_group, vault.name, kind, parameters
            )

    # --- system topics ----------------------------------------------------------------------

    async def _topics(self, subscription_id: str) -> list[TopicRef]:
        topics = []
        with translated("list Event Grid system topics"):
            async for topic in self._grid(subscription_id).system_topics.list_by_subscription():
                parts = _parts(topic.id or "")
                tags = topic.tags or {}
                topics.append(
                    TopicRef(
                        name=topic.name or "",
                        subscription_id=parts[1],
                        resource_group=parts[3],
                        source=topic.source or "",
                        topic_type=topic.topic_type or "",
                        managed=tags.get(MANAGED_TAG[0]) == MANAGED_TAG[1],
                    )
                )
        return topics

    async def find_topic(
        self, subscription_id: str, source: str, topic_type: str
    ) -> TopicRef | None:
        for topic in await self._topics(subscription_id):
            if (
                topic.source.rstrip("/").lower() == source.rstrip("/").lower()
                and topic.topic_type.lower() == topic_type.lower()
            ):
                return topic
        return None

    async def vault_topics(self, subscription_id: str) -> list[TopicRef]:
        topics = await self._topics(subscription_id)
        return [t for t in topics if t.topic_type.lower() == VAULT_TOPIC_TYPE]

    async def create_topic(self, topic: TopicRef, location: str) -> TopicRef:
        model = SystemTopic(
            location=location,
            source=topic.source,
            topic_type=topic.topic_type,
            tags={MANAGED_TAG[0]: MANAGED_TAG[1]},
        )
        with translated(f"create system topic {topic.name}"):
            poller = await self._grid(topic.subscription_id).system_topics.begin_create_or_update(
                topic.resource_group, topic.name, model
            )
            await poller.result()
        return topic

    async def delete_topic(self, topic: TopicRef) -> None:
        with translated(f"delete system topic {topic.name}"):
            poller = await self._grid(topic.subscription_id).system_topics.begin_delete(
                topic.resource_group, topic.name
            )
            await poller.result()

    # --- event subscriptions ----------------------------------------------------------------

    async def event_subscription(self, topic: TopicRef, name: str) -> FoundSubscription | None:
        operations = self._grid(topic.subscription_id).system_topic_event_subscriptions
        with translated(f"get event subscription {name}"):
            try:
                found = await operations.get(topic.resource_group, topic.name, name)
            except ResourceNotFoundError:
                return None
        return _found(found)

    async def event_subscription_names(self, topic: TopicRef) -> list[str]:
        operations = self._grid(topic.subscription_id).system_topic_event_subscriptions
        with translated(f"list event subscriptions of {topic.name}"):
            pager = operations.list_by_system_topic(topic.resource_group, topic.name)
            return [s.name or "" async for s in pager]

    async def put_event_subscription(self, topic: TopicRef, spec: SubscriptionSpec) -> None:
        template = spec.template
        dead_letter = None
        if spec.dead_letter is not None:
            dead_letter = StorageBlobDeadLetterDestination(
                resource_id=spec.dead_letter.account_id,
                blob_container_name=spec.dead_letter.container,
            )
        model = EventSubscription(
            destination=AzureFunctionEventSubscriptionDestination(resource_id=spec.function_id),
            filter=EventSubscriptionFilter(
                included_event_types=list(template.included_event_types),
                advanced_filters=[
                    StringInAdvancedFilter(key=f.key, values=list(f.values))
                    for f in template.advanced_filters
                ]
                or None,
            ),
            event_delivery_schema=DELIVERY_SCHEMA,
            retry_policy=RetryPolicy(
                max_delivery_attempts=spec.max_delivery_attempts,
                event_time_to_live_in_minutes=spec.event_ttl_minutes,
            ),
            dead_letter_destination=dead_letter,
        )
        operations = self._grid(topic.subscription_id).system_topic_event_subscriptions
        with translated(f"write event subscription {spec.name}"):
            poller = await operations.begin_create_or_update(
                topic.resource_group, topic.name, spec.name, model
            )
            await poller.result()

    async def delete_event_subscription(self, topic: TopicRef, name: str) -> None:
        operations = self._grid(topic.subscription_id).system_topic_event_subscriptions
        with translated(f"delete event subscription {name}"):
            poller = await operations.begin_delete(topic.resource_group, topic.name, name)
            await poller.result()

    # --- role assignments -------------------------------------------------------------------

    async def role_assignments(self, scope: str, principal_id: str) -> list[FoundAssignment]:
        operations = self._auth(scope).role_assignments
        found = []
        with translated("list role assignments"):
            pager = operations.list_for_scope(scope, filter=f"principalId eq '{principal_id}'")
            async for assignment in pager:
                if (assignment.principal_id or "").lower() != principal_id.lower():
                    continue
                found.append(
                    FoundAssignment(
                        name=assignment.name or "",
                        scope=assignment.scope or "",
                        role_guid=(assignment.role_definition_id or "").rsplit("/", 1)[-1].lower(),
                    )
                )
        return found

    async def create_role_assignment(
        self, scope: str, name: str, role: Role, principal_id: str
    ) -> None:
        definition = (
            f"/subscriptions/{_parts(scope)[1]}/providers/Microsoft.Authorization"
            f"/roleDefinitions/{role.guid}"
        )
        parameters = RoleAssignmentCreateParameters(
            role_definition_id=definition,
            principal_id=principal_id,
            principal_type="ServicePrincipal",  # a managed identity; skips replication delay
        )
        with translated(f"assign {role.name}"):
            await self._auth(scope).role_assignments.create(scope, str(uuid.UUID(name)), parameters)

    async def delete_role_assignment(self, scope: str, name: str) -> None:
        with translated("delete role assignment"):
            await self._auth(scope).role_assignments.delete(scope, name)


def _found(model: EventSubscription) -> FoundSubscription:
    destination = model.destination
    endpoint_type = str(getattr(destination, "endpoint_type", "") or "")
    function_id = getattr(destination, "resource_id", None)
    flt = model.filter
    filters = []
    for item in (flt.advanced_filters if flt else None) or []:
        values = getattr(item, "values", None) or []
        filters.append(
            AdvancedFilter(
                str(item.operator_type or ""), str(item.key or ""), tuple(str(v) for v in values)
            )
        )
    retry = model.retry_policy
    dead = model.dead_letter_destination
    dead_letter = None
    if isinstance(dead, StorageBlobDeadLetterDestination) and dead.resource_id:
        dead_letter = DeadLetterTarget(dead.resource_id, dead.blob_container_name or "")
    types = flt.included_event_types if flt else None
    return FoundSubscription(
        name=model.name or "",
        endpoint_type=endpoint_type,
        function_id=str(function_id) if function_id else None,
        included_event_types=tuple(types) if types is not None else None,
        advanced_filters=tuple(filters),
        max_delivery_attempts=retry.max_delivery_attempts if retry else None,
        event_ttl_minutes=retry.event_time_to_live_in_minutes if retry else None,
        dead_letter=dead_letter,
    )


class StorageNameProbe:
    """:class:`shared.services.onboarding.StorageNames` over the Storage data-plane clients
    the composition root builds (reads only: it never creates what it looks for)."""

    def __init__(self, tables: Any, queues: Any, blobs: Any) -> None:
        self._tables = tables
        self._queues = queues
        self._blobs = blobs

    async def table_exists(self, name: str) -> bool:
        with translated("list tables"):
            async for _ in self._tables.query_tables(f"TableName eq '{name}'"):
                return True
        return False

    async def queue_exists(self, name: str) -> bool:
        with translated(f"get queue {name}"):
            try:
                await self._queues.get_queue_client(name).get_queue_properties()
            except ResourceNotFoundError:
                return False
        return True

    async def container_exists(self, name: str) -> bool:
        with translated(f"get container {name}"):
            return bool(await self._blobs.get_container_client(name).exists())

    async def close(self) -> None:
        for client in (self._tables, self._queues, self._blobs):
            await client.close()
