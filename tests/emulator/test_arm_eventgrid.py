"""Microsoft.EventGrid system topics and event subscriptions on the emulator's ARM surface,
through azure-mgmt-eventgrid 10.4: the shapes and refusals, the long-running PUTs, and that a
subscription written through ARM really delivers (an ``AzureFunction`` destination to a
registered site, advanced filters applied, dead letters to Azurite)."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from aiohttp import web
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.mgmt.authorization import AuthorizationManagementClient
from azure.mgmt.authorization.v2022_04_01.models import RoleAssignmentCreateParameters
from azure.mgmt.eventgrid import EventGridManagementClient
from azure.mgmt.eventgrid.models import (
    AzureFunctionEventSubscriptionDestination,
    EventSubscription,
    EventSubscriptionFilter,
    RetryPolicy,
    StorageBlobDeadLetterDestination,
    StringInAdvancedFilter,
    SystemTopic,
)
from azure.storage.blob import ContainerClient

from devtools.azurite import AzuriteInfo
from devtools.emulator.arm_client import ArmControl, management_client_kwargs
from devtools.emulator.arm_eventgrid import EventGridArmControl
from devtools.emulator.credential import EmulatorCredential
from devtools.emulator.eventgrid_client import EventGridControl
from devtools.emulator.eventgrid_webhook import BackgroundLoop, start_site
from devtools.emulator.pytest_plugin import EmulatorVault, RunningEmulator, VaultFactory
from devtools.emulator.state import DEFAULT_RESOURCE_GROUP, DEFAULT_SUBSCRIPTION_ID

pytestmark = pytest.mark.emulator

SUB = DEFAULT_SUBSCRIPTION_ID
RG = DEFAULT_RESOURCE_GROUP
PROVIDERS = f"/subscriptions/{SUB}/resourceGroups/{RG}/providers"
CRYPTO_USER = "e147488a-f6f5-4113-8e2d-b22465e65bf6"


class _Site:
    """A stand-in Function App host: answers every request with ``status`` and records it."""

    def __init__(self, status: int = 200) -> None:
        self.status = status
        self.requests: list[tuple[str, dict[str, Any] | list[Any] | None]] = []
        self._lock = threading.Lock()

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        with self._lock:
            self.requests.append((request.path_qs, json.loads(body) if body else None))
        return web.Response(status=self.status)

    def events(self) -> list[dict[str, Any]]:
        with self._lock:
            return [e for _, body in self.requests if isinstance(body, list) for e in body]


@contextmanager
def _serving(site: _Site) -> Iterator[str]:
    background = BackgroundLoop()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", site.handle)
    runner, port = background.run(start_site(app))
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        background.run(runner.cleanup())
        background.stop()


@pytest.fixture
def client(emulator: RunningEmulator) -> Iterator[EventGridManagementClient]:
    arm = ArmControl(emulator.url, emulator.ca_path)
    arm.set_lro(seconds=0.0, retry_after="0.05")
    operator = str(emulator.client.create_principal(display_name="eg-operator")["object_id"])
    kwargs = management_client_kwargs(emulator.url, emulator.ca_path)
    yield EventGridManagementClient(EmulatorCredential(operator), SUB, **kwargs)
    arm.set_lro(seconds=0.0, retry_after="1")


def _vault_topic(client: EventGridManagementClient, vault: EmulatorVault) -> str:
    name = f"{vault.name}-events"
    topic = SystemTopic(
        location="westeurope",
        source=vault.arm_id,
        topic_type="microsoft.keyvault.vaults",
        tags={"keyward": "test"},
    )
    client.system_topics.begin_create_or_update(RG, name, topic).result()
    return name


def _subscription(app: str, **extra: Any) -> EventSubscription:
    return EventSubscription(
        destination=AzureFunctionEventSubscriptionDestination(
            resource_id=f"{PROVIDERS}/Microsoft.Web/sites/{app}/functions/on_key_vault_event"
        ),
        **extra,
    )


def test_system_topic_lifecycle_and_refusals(
    client: EventGridManagementClient, emulator_vault_factory: VaultFactory
) -> None:
    vault = emulator_vault_factory()
    name = _vault_topic(client, vault)
    topic = client.system_topics.get(RG, name)
    assert (topic.source, topic.topic_type) == (vault.arm_id, "microsoft.keyvault.vaults")
    assert topic.provisioning_state == "Succeeded"
    assert topic.tags == {"keyward": "test"}
    assert topic.id == f"{PROVIDERS}/Microsoft.EventGrid/systemTopics/{name}"
    assert name in {t.name for t in client.system_topics.list_by_subscription()}
    assert name in {t.name for t in client.system_topics.list_by_resource_group(RG)}
    # One system topic per source; the source must exist; the type must be known.
    second = SystemTopic(
        location="westeurope", source=vault.arm_id, topic_type="microsoft.keyvault.vaults"
    )
    with pytest.raises(HttpResponseError, match="Only one system topic"):
        client.system_topics.begin_create_or_update(RG, name + "2", second).result()
    missing = SystemTopic(
        location="westeurope", source=vault.arm_id + "x", topic_type="microsoft.keyvault.vaults"
    )
    with pytest.raises(HttpResponseError, match="was not found"):
        client.system_topics.begin_create_or_update(RG, "nope", missing).result()
    client.system_topics.begin_delete(RG, name).result()
    with pytest.raises(ResourceNotFoundError):
        client.system_topics.get(RG, name)


def test_an_event_subscription_round_trips_and_an_unknown_function_is_refused(
    emulator: RunningEmulator,
    client: EventGridManagementClient,
    emulator_vault_factory: VaultFactory,
) -> None:
    vault = emulator_vault_factory()
    topic = _vault_topic(client, vault)
    operations = client.system_topic_event_subscriptions
    try:
        with pytest.raises(HttpResponseError, match="was not found"):
            operations.begin_create_or_update(RG, topic, "keyward", _subscription("ghost")).result()
        with _serving(_Site()) as url:
            EventGridArmControl(emulator.url, emulator.ca_path).register_site("app1", url, "k")
            wanted = _subscription(
                "app1",
                filter=EventSubscriptionFilter(
                    included_event_types=["Microsoft.KeyVault.KeyNewVersionCreated"]
                ),
                retry_policy=RetryPolicy(max_delivery_attempts=7, event_time_to_live_in_minutes=60),
                dead_letter_destination=StorageBlobDeadLetterDestination(
                    resource_id=f"{PROVIDERS}/Microsoft.Storage/storageAccounts/acct",
                    blob_container_name="dl",
                ),
            )
            operations.begin_create_or_update(RG, topic, "keyward", wanted).result()
            found = operations.get(RG, topic, "keyward")
            assert found.provisioning_state == "Succeeded"
            assert found.topic == vault.arm_id
            assert found.destination.endpoint_type == "AzureFunction"
            assert found.destination.resource_id.endswith(
                "/sites/app1/functions/on_key_vault_event"
            )
            assert found.filter.included_event_types == ["Microsoft.KeyVault.KeyNewVersionCreated"]
            assert (
                found.retry_policy.max_delivery_attempts,
                found.retry_policy.event_time_to_live_in_minutes,
            ) == (7, 60)
            assert found.dead_letter_destination.blob_container_name == "dl"
            # PUT again (an update): the spec's 201 again, and the same resource.
            operations.begin_create_or_update(RG, topic, "keyward", wanted).result()
            assert [s.name for s in operations.list_by_system_topic(RG, topic)] == ["keyward"]
            operations.begin_delete(RG, topic, "keyward").result()
            with pytest.raises(ResourceNotFoundError):
                operations.get(RG, topic, "keyward")
    finally:
        client.system_topics.begin_delete(RG, topic).result()


def test_an_arm_subscription_delivers_with_its_advanced_filter(
    emulator: RunningEmulator,
    client: EventGridManagementClient,
    emulator_vault_factory: VaultFactory,
) -> None:
    """On the subscription topic, StringIn on data.operationName lets role assignment writes
    through and keeps a vault write out."""
    vault = emulator_vault_factory(rbac=True)
    topics = [
        t
        for t in client.system_topics.list_by_subscription()
        if (t.source or "").lower() == f"/subscriptions/{SUB}"
    ]
    topic = topics[0].name if topics else f"sub-{uuid.uuid4().hex[:6]}"
    created = not topics
    if created:
        sub_topic = SystemTopic(
            location="global",
            source=f"/subscriptions/{SUB}",
            topic_type="microsoft.resources.subscriptions",
        )
        client.system_topics.begin_create_or_update(RG, topic, sub_topic).result()
    operations = client.system_topic_event_subscriptions
    name = f"filtered-{uuid.uuid4().hex[:6]}"
    site = _Site()
    grid = EventGridControl(emulator.url, emulator.ca_path)
    with _serving(site) as url:
        EventGridArmControl(emulator.url, emulator.ca_path).register_site("app2", url, "key2")
        flt = EventSubscriptionFilter(
            included_event_types=["Microsoft.Resources.ResourceWriteSuccess"],
            advanced_filters=[
                StringInAdvancedFilter(
                    key="data.operationName",
                    values=["Microsoft.Authorization/roleAssignments/write"],
                )
            ],
        )
        operations.begin_create_or_update(
            RG, topic, name, _subscription("app2", filter=flt)
        ).result()
        try:
            kwargs = management_client_kwargs(emulator.url, emulator.ca_path)
            auth = AuthorizationManagementClient(EmulatorCredential(vault.admin_id), SUB, **kwargs)
            principal = str(emulator.client.create_principal()["object_id"])
            auth.role_assignments.create(
                vault.arm_id,
                str(uuid.uuid4()),
                RoleAssignmentCreateParameters(
                    role_definition_id=f"/subscriptions/{SUB}/providers/Microsoft.Authorization"
                    f"/roleDefinitions/{CRYPTO_USER}",
                    principal_id=principal,
                    principal_type="ServicePrincipal",
                ),
            )
            emulator.client.set_access_policy(vault.name, principal, ["get"])  # no ARM event
            assert grid.drain()
        finally:
            operations.begin_delete(RG, topic, name).result()
            if created:
                client.system_topics.begin_delete(RG, topic).result()
    operations_seen = {e["data"]["operationName"] for e in site.events()}
    assert operations_seen == {"Microsoft.Authorization/roleAssignments/write"}
    paths = {path for path, _ in site.requests}
    assert all(
        p.startswith("/runtime/webhooks/eventgrid?functionName=on_key_vault_event&code=key2")
        for p in paths
    )


@pytest.mark.azurite
def test_dead_letters_of_an_arm_subscription_land_in_the_registered_account(
    emulator: RunningEmulator,
    azurite: AzuriteInfo,
    client: EventGridManagementClient,
    emulator_vault_factory: VaultFactory,
) -> None:
    vault = emulator_vault_factory()
    topic = _vault_topic(client, vault)
    container = f"dl{uuid.uuid4().hex[:10]}"
    control = EventGridArmControl(emulator.url, emulator.ca_path)
    control.register_storage_account("deadacct", azurite.connection_string)
    operations = client.system_topic_event_subscriptions
    try:
        with _serving(_Site(status=500)) as url:
            control.register_site("failing", url, "k")
            wanted = _subscription(
                "failing",
                retry_policy=RetryPolicy(max_delivery_attempts=1, event_time_to_live_in_minutes=60),
                dead_letter_destination=StorageBlobDeadLetterDestination(
                    resource_id=f"{PROVIDERS}/Microsoft.Storage/storageAccounts/deadacct",
                    blob_container_name=container,
                ),
            )
            operations.begin_create_or_update(RG, topic, "keyward", wanted).result()
            vault.key_client().create_rsa_key("dead", size=2048)
            assert EventGridControl(emulator.url, emulator.ca_path).drain()
    finally:
        client.system_topics.begin_delete(RG, topic).result()
    blobs = ContainerClient.from_connection_string(azurite.connection_string, container)
    (blob,) = [b.name for b in blobs.list_blobs()]
    assert blob.startswith(f"{topic}-keyward/".upper())
    (letter,) = json.loads(blobs.download_blob(blob).readall())
    assert letter["eventType"] == "Microsoft.KeyVault.KeyNewVersionCreated"
    assert letter["deadLetterReason"] == "MaxDeliveryAttemptsExceeded"


@pytest.mark.parametrize("name", ["kw", "k" * 65, "keyward.app", "keyward_app"])
def test_an_event_subscription_name_outside_event_grids_rules_is_refused(
    emulator: RunningEmulator,
    client: EventGridManagementClient,
    emulator_vault_factory: VaultFactory,
    name: str,
) -> None:
    """3 to 64 of a-z, A-Z, 0-9 and "-" (the 64-character name just fits)."""
    vault = emulator_vault_factory()
    topic = _vault_topic(client, vault)
    operations = client.system_topic_event_subscriptions
    try:
        with _serving(_Site()) as url:
            EventGridArmControl(emulator.url, emulator.ca_path).register_site("app1", url, "k")
            with pytest.raises(HttpResponseError, match="between 3 and 64 characters"):
                operations.begin_create_or_update(RG, topic, name, _subscription("app1")).result()
            longest = "k" * 64
            operations.begin_create_or_update(RG, topic, longest, _subscription("app1")).result()
            assert [s.name for s in operations.list_by_system_topic(RG, topic)] == [longest]
    finally:
        client.system_topics.begin_delete(RG, topic).result()
