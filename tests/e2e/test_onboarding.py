"""Issue 14, vault onboarding against Azurite and the emulator, through the real CLI and the
real management SDKs: ``connect-vault`` then ``doctor`` says everything is right; breaking
any one thing (a role assignment, an event type, a filter, the retry policy, the dead-letter
destination, a whole subscription, the queue) makes ``doctor`` name exactly that check; a
second ``connect-vault`` sends no ARM write; ``disconnect-vault`` removes what connect made;
and an event subscription made through ARM delivers a rotation to the local host."""

from __future__ import annotations

import asyncio
import io
import json
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pytest
from aiohttp import web
from azure.data.tables import TableServiceClient
from azure.mgmt.authorization import AuthorizationManagementClient
from azure.mgmt.eventgrid import EventGridManagementClient
from azure.storage.blob import BlobServiceClient
from azure.storage.queue import QueueServiceClient
from rich.console import Console

from devtools.azurite import AzuriteInfo
from devtools.emulator.arm_client import ArmControl, management_client_kwargs
from devtools.emulator.arm_eventgrid import EventGridArmControl
from devtools.emulator.credential import EmulatorCredential
from devtools.emulator.eventgrid_client import EventGridControl
from devtools.emulator.eventgrid_webhook import BackgroundLoop, start_site
from devtools.emulator.pytest_plugin import EmulatorVault, RunningEmulator
from devtools.emulator.state import DEFAULT_RESOURCE_GROUP, DEFAULT_SUBSCRIPTION_ID
from shared.cli import main
from shared.composition import reset_contexts
from shared.onboarding import (
    ACCESS_SUBSCRIPTION,
    CRYPTO_SERVICE_ENCRYPTION_USER,
    KEY_VAULT_READER,
    VAULT_SUBSCRIPTION,
    assignment_name,
)
from tests.e2e.conftest import Stack, call

pytestmark = [pytest.mark.azurite, pytest.mark.emulator]

SUB = DEFAULT_SUBSCRIPTION_ID
RG = f"/subscriptions/{SUB}/resourceGroups/{DEFAULT_RESOURCE_GROUP}/providers"
APP = "keyward-app"
FUNCTION_APP = f"{RG}/Microsoft.Web/sites/{APP}"
ACCOUNT = "keywardstore"
STORAGE_ACCOUNT = f"{RG}/Microsoft.Storage/storageAccounts/{ACCOUNT}"
KEY_EVENT = "Microsoft.KeyVault.KeyNewVersionCreated"


def _cli(*args: str) -> tuple[int, Any]:
    out = io.StringIO()
    code = main([*args, "--json"], Console(file=out, width=400))
    return code, json.loads(out.getvalue())


@dataclass
class Onboard:
    emulator: RunningEmulator
    vault: EmulatorVault
    principal: str
    settings: dict[str, str]
    arm: EventGridArmControl

    def flags(self) -> list[str]:
        return ["--function-app", FUNCTION_APP, "--principal-id", self.principal,
                "--dead-letter-account", STORAGE_ACCOUNT]  # fmt: skip

    def connect(self) -> tuple[int, Any]:
        return _cli("connect-vault", "--vault", self.vault.name, *self.flags())

    def disconnect(self) -> tuple[int, Any]:
        return _cli("disconnect-vault", "--vault", self.vault.name, *self.flags())

    def doctor(self) -> tuple[int, Any]:
        return _cli("doctor", *self.flags())

    def wrong(self) -> set[str]:
        code, report = self.doctor()
        wrong = {c["check"] for c in report["checks"] if not c["ok"]}
        assert (code == 0) == (not wrong)
        return wrong

    def grid(self) -> EventGridManagementClient:
        kwargs = management_client_kwargs(self.emulator.url, self.emulator.ca_path)
        return EventGridManagementClient(EmulatorCredential(self.principal), SUB, **kwargs)

    def vault_topic(self) -> str:
        return next(t.name for t in self.grid().system_topics.list_by_subscription()
                    if (t.source or "").lower() == self.vault.arm_id.lower())  # fmt: skip

    def subscription_topic(self) -> str:
        return next(t.name for t in self.grid().system_topics.list_by_subscription()
                    if (t.source or "").lower() == f"/subscriptions/{SUB}")  # fmt: skip

    def rewrite(self, topic: str, name: str, change: Callable[[Any], None]) -> None:
        """Change one thing of an event subscription through ARM, as a person might."""
        operations = self.grid().system_topic_event_subscriptions
        model = operations.get(DEFAULT_RESOURCE_GROUP, topic, name)
        change(model)
        operations.begin_create_or_update(DEFAULT_RESOURCE_GROUP, topic, name, model).result()


def _settings(
    emulator: RunningEmulator, azurite: AzuriteInfo, vault: EmulatorVault
) -> dict[str, str]:
    suffix = uuid.uuid4().hex[:10]
    return {
        "KEYWARD_VAULT_ALLOWLIST": f"{vault.name}={vault.url}",
        "AzureWebJobsStorage": azurite.connection_string,
        "KEYWARD_DEK_TABLE": f"deks{suffix}",
        "KEYWARD_JOB_QUEUE": f"keyward-{suffix}",
        "KEYWARD_DEADLETTER_CONTAINER": f"deadletters{suffix}",
        "KEYWARD_FACE_SUBSCRIPTIONS": SUB,  # Face verdicts on: Key Vault Reader is wanted too
        "KEYWARD_CA_BUNDLE": emulator.ca_path,
        "KEYWARD_ARM_ENDPOINT": emulator.url,
        "IDENTITY_ENDPOINT": emulator.identity["IDENTITY_ENDPOINT"],
        "IDENTITY_HEADER": emulator.identity["IDENTITY_HEADER"],
    }


def _environment(monkeypatch: pytest.MonkeyPatch, settings: dict[str, str]) -> None:
    for name in ("AZURE_CLIENT_ID", "AZURE_TENANT_ID", "AZURE_CLIENT_SECRET", "MSI_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    for name, value in settings.items():
        monkeypatch.setenv(name, value)
    reset_contexts()


@contextmanager
def _site() -> Iterator[str]:
    """A stand-in Function App that accepts every delivery (200)."""
    background = BackgroundLoop()

    async def accept(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(status=200)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", accept)
    runner, port = background.run(start_site(app))
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        background.run(runner.cleanup())
        background.stop()


@pytest.fixture
def fast_lro(emulator: RunningEmulator) -> Iterator[None]:
    arm = ArmControl(emulator.url, emulator.ca_path)
    arm.set_lro(seconds=0.0, retry_after="0.05")
    yield
    arm.set_lro(seconds=0.0, retry_after="1")


@pytest.fixture
def onboard(
    emulator: RunningEmulator,
    azurite: AzuriteInfo,
    emulator_vault_factory: Callable[..., EmulatorVault],
    monkeypatch: pytest.MonkeyPatch,
    fast_lro: None,
) -> Iterator[Onboard]:
    """An RBAC vault, keyward's storage names created in Azurite, a site that answers 200."""
    vault = emulator_vault_factory(rbac=True)
    settings = _settings(emulator, azurite, vault)
    _environment(monkeypatch, settings)
    connection = azurite.connection_string
    TableServiceClient.from_connection_string(connection).create_table_if_not_exists("keywardstate")
    TableServiceClient.from_connection_string(connection).create_table(
        settings["KEYWARD_DEK_TABLE"]
    )
    QueueServiceClient.from_connection_string(connection).create_queue(
        settings["KEYWARD_JOB_QUEUE"]
    )
    blobs = BlobServiceClient.from_connection_string(connection)
    blobs.create_container(settings["KEYWARD_DEADLETTER_CONTAINER"])
    arm = EventGridArmControl(emulator.url, emulator.ca_path)
    with _site() as site:
        arm.register_site(APP, site, "system-key")
        arm.register_storage_account(ACCOUNT, connection)
        onboard = Onboard(emulator, vault, emulator.identity["object_id"], settings, arm)
        try:
            yield onboard
        finally:
            onboard.disconnect()
            EventGridControl(emulator.url, emulator.ca_path).drain()


def test_connect_vault_then_doctor_reports_everything_right(onboard: Onboard) -> None:
    code, connected = onboard.connect()
    assert code == 0
    actions = {step["item"]: step["action"] for step in connected["steps"]}
    assert f"role {CRYPTO_SERVICE_ENCRYPTION_USER.name} on {onboard.vault.name}" in actions
    assert f"role {KEY_VAULT_READER.name} on {onboard.vault.name}" in actions
    assert actions[f"event subscription keyward on {onboard.vault_topic()}"] == "created"

    code, report = onboard.doctor()
    assert code == 0, [c for c in report["checks"] if not c["ok"]]
    assert report["ok"] is True
    names = {c["check"] for c in report["checks"]}
    vault = f"vault {onboard.vault.name}"
    for expected in (
        "settings",
        f"storage: queue {onboard.settings['KEYWARD_JOB_QUEUE']}",
        f"{vault}: role {CRYPTO_SERVICE_ENCRYPTION_USER.name}",
        f"subscription {SUB}: event subscription keyward-access: filter data.operationName",
        f"{vault}: event subscription keyward: dead-letter destination",
        f"{vault}: event subscription keyward: retry policy",
    ):
        assert expected in names


def test_connect_vault_twice_changes_nothing_the_second_time(onboard: Onboard) -> None:
    assert onboard.connect()[0] == 0
    before = len(onboard.arm.writes())
    code, again = onboard.connect()
    assert code == 0
    assert onboard.arm.writes()[before:] == []  # no ARM write request at all
    assert {step["action"] for step in again["steps"]} == {"unchanged"}
    assert len(again["steps"]) == 6  # 2 topics, 2 subscriptions, 2 roles


def _remove_role(role_name: str) -> Callable[[Onboard], None]:
    def remove(onboard: Onboard) -> None:
        role = {r.name: r for r in (CRYPTO_SERVICE_ENCRYPTION_USER, KEY_VAULT_READER)}[role_name]
        kwargs = management_client_kwargs(onboard.emulator.url, onboard.emulator.ca_path)
        client = AuthorizationManagementClient(EmulatorCredential(onboard.principal), SUB, **kwargs)
        name = assignment_name(onboard.vault.arm_id, onboard.principal, role)
        client.role_assignments.delete(onboard.vault.arm_id, name)

    return remove


def _on_vault(change: Callable[[Any], None]) -> Callable[[Onboard], None]:
    return lambda o: o.rewrite(o.vault_topic(), VAULT_SUBSCRIPTION.name, change)


def _on_access(change: Callable[[Any], None]) -> Callable[[Onboard], None]:
    return lambda o: o.rewrite(o.subscription_topic(), ACCESS_SUBSCRIPTION.name, change)


def _drop_first_type(model: Any) -> None:
    model.filter.included_event_types = model.filter.included_event_types[1:]


def _drop_filters(model: Any) -> None:
    model.filter.advanced_filters = None


def _drop_dead_letter(model: Any) -> None:
    model.dead_letter_destination = None


def _fewer_attempts(model: Any) -> None:
    model.retry_policy.max_delivery_attempts = 5


def _delete_vault_subscription(onboard: Onboard) -> None:
    operations = onboard.grid().system_topic_event_subscriptions
    operations.begin_delete(DEFAULT_RESOURCE_GROUP, onboard.vault_topic(), "keyward").result()


def _delete_queue(onboard: Onboard) -> None:
    queues = QueueServiceClient.from_connection_string(onboard.settings["AzureWebJobsStorage"])
    queues.delete_queue(onboard.settings["KEYWARD_JOB_QUEUE"])


VAULT = "vault {vault}"
KEYWARD = "vault {vault}: event subscription keyward"
ACCESS = f"subscription {SUB}: event subscription keyward-access"
BREAKAGES = {
    "role-encryption-user": (_remove_role(CRYPTO_SERVICE_ENCRYPTION_USER.name),
                             f"{VAULT}: role {CRYPTO_SERVICE_ENCRYPTION_USER.name}"),
    "role-reader": (_remove_role(KEY_VAULT_READER.name), f"{VAULT}: role {KEY_VAULT_READER.name}"),
    "vault-event-type": (_on_vault(_drop_first_type), f"{KEYWARD}: event types"),
    "vault-dead-letter": (_on_vault(_drop_dead_letter), f"{KEYWARD}: dead-letter destination"),
    "vault-retry": (_on_vault(_fewer_attempts), f"{KEYWARD}: retry policy"),
    "vault-subscription": (_delete_vault_subscription, KEYWARD),
    "access-filter": (_on_access(_drop_filters), f"{ACCESS}: filter data.operationName"),
    "access-event-type": (_on_access(_drop_first_type), f"{ACCESS}: event types"),
    "access-dead-letter": (_on_access(_drop_dead_letter), f"{ACCESS}: dead-letter destination"),
    "queue": (_delete_queue, "storage: queue {queue}"),
}  # fmt: skip


@pytest.mark.parametrize("breakage", sorted(BREAKAGES))
def test_doctor_names_exactly_the_one_thing_removed_and_connect_repairs_it(
    onboard: Onboard, breakage: str
) -> None:
    assert onboard.connect()[0] == 0
    assert onboard.wrong() == set()
    change, check = BREAKAGES[breakage]
    change(onboard)
    expected = check.format(vault=onboard.vault.name, queue=onboard.settings["KEYWARD_JOB_QUEUE"])
    assert onboard.wrong() == {expected}
    if breakage != "queue":  # the queue is the app's to create, not connect-vault's
        code, repaired = onboard.connect()  # repairs exactly that, and doctor agrees
        assert code == 0
        (changed,) = [s for s in repaired["steps"] if s["action"] != "unchanged"]
        assert changed["action"] in {"created", "updated"}
        assert onboard.wrong() == set()


def test_disconnect_vault_removes_what_connect_made_and_doctor_says_so(onboard: Onboard) -> None:
    assert onboard.connect()[0] == 0
    topic = onboard.vault_topic()
    code, removed = onboard.disconnect()
    assert code == 0
    actions = {step["item"]: step["action"] for step in removed["steps"]}
    assert actions[f"event subscription keyward on {topic}"] == "removed"
    assert actions[f"role {KEY_VAULT_READER.name} on {onboard.vault.name}"] == "removed"
    sources = {
        (t.source or "").lower() for t in onboard.grid().system_topics.list_by_subscription()
    }
    assert onboard.vault.arm_id.lower() not in sources  # its topic was connect-vault's: gone
    vault = f"vault {onboard.vault.name}"
    assert onboard.wrong() == {
        f"{vault}: system topic (microsoft.keyvault.vaults)",
        f"{vault}: role {CRYPTO_SERVICE_ENCRYPTION_USER.name}",
        f"{vault}: role {KEY_VAULT_READER.name}",
        f"subscription {SUB}: system topic (microsoft.resources.subscriptions)",
    }
    code, again = onboard.disconnect()
    assert code == 0
    assert {s["action"] for s in again["steps"]} <= {"absent"}


def test_a_vault_outside_the_allow_list_is_refused_before_any_call(onboard: Onboard) -> None:
    before = len(onboard.arm.writes())
    out = io.StringIO()
    code = main(["connect-vault", "--vault", "not-allowed", *onboard.flags()],
                Console(file=out, width=400))  # fmt: skip
    assert code == 2
    assert "allow-list" in out.getvalue()
    assert onboard.arm.writes()[before:] == []


async def test_a_subscription_connect_vault_made_delivers_a_rotation_to_the_local_host(
    stack: Stack, fast_lro: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    emulator = stack.emulator
    monkeypatch.setenv("KEYWARD_ARM_ENDPOINT", emulator.url)
    arm = EventGridArmControl(emulator.url, emulator.ca_path)
    await call(arm.register_site, APP, stack.host.base_url, stack.host.keys.eventgrid)
    principal = emulator.identity["object_id"]
    flags = ["--vault", stack.vault.name, "--function-app", FUNCTION_APP,
             "--principal-id", principal]  # fmt: skip
    code, connected = await asyncio.to_thread(_cli, "connect-vault", *flags)
    try:
        assert code == 0
        # The stack's vault uses access policies, which the stack already granted.
        policy = [s for s in connected["steps"] if s["item"].startswith("access policy")]
        assert [s["action"] for s in policy] == ["unchanged"], policy
        key_name = f"onb-{uuid.uuid4().hex[:8]}"
        await call(stack.key_client.create_rsa_key, key_name, size=2048)
        grid = EventGridControl(emulator.url, emulator.ca_path)
        rotated = await call(stack.key_client.rotate_key, key_name)
        assert await call(grid.drain)
        topic = next(s["item"].split(" on ")[1] for s in connected["steps"]
                     if s["item"].startswith("event subscription keyward on"))  # fmt: skip
        deliveries = await call(grid.deliveries, f"{topic}-keyward".lower())
        delivered = [d for d in deliveries if d["status"] == 200]
        assert delivered, deliveries
        events = await call(grid.published, topic=stack.vault.arm_id, event_type=KEY_EVENT)
        rotation = next(e for e in events if rotated.properties.version in json.dumps(e["data"]))
        assert any(rotation["id"] in d["eventIds"] for d in delivered)
        assert any(i.function == "on_key_vault_event" and i.ok for i in stack.host.invocations)
    finally:
        await asyncio.to_thread(_cli, "disconnect-vault", *flags)
