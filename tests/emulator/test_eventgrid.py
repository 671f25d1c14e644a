"""Event Grid delivery from the running emulator, judged by azure-eventgrid and Azure's samples.

Events come from what really happens in the emulator (a key version created in a vault, a
role assignment written through ARM); a real HTTP webhook receives them; ``EventGridEvent`` /
``CloudEvent`` parse them; envelopes and payloads are compared key for key with the samples
in ``../shared/specs/eventgrid/``.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import random
import ssl
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from azure.core.credentials import AzureKeyCredential, AzureSasCredential
from azure.core.exceptions import ClientAuthenticationError, HttpResponseError
from azure.core.messaging import CloudEvent
from azure.eventgrid import EventGridEvent, EventGridPublisherClient, generate_sas
from azure.mgmt.authorization import AuthorizationManagementClient

from devtools.emulator import tls
from devtools.emulator.arm_client import ControlError, management_client_kwargs
from devtools.emulator.credential import EmulatorCredential
from devtools.emulator.eventgrid_client import EventGridControl
from devtools.emulator.eventgrid_webhook import RecordingWebhook
from devtools.emulator.pytest_plugin import EmulatorVault, RunningEmulator, VaultFactory
from devtools.emulator.state import DEFAULT_SUBSCRIPTION_ID, ROLE_KEY_VAULT_CRYPTO_USER

KEY_EVENT = "Microsoft.KeyVault.KeyNewVersionCreated"
SUB_TOPIC = f"/subscriptions/{DEFAULT_SUBSCRIPTION_ID}"
DEFAULTS: dict[str, Any] = {
    "time_scale": 1.0,
    "response_timeout": 30.0,
    "jitter": 0.0,
    "duplicate_rate": 0.0,
    "reorder_window": 0.0,
    "seed": 0,
}

Subscribe = Callable[..., dict[str, Any]]


@pytest.fixture
def grid(emulator: RunningEmulator) -> Iterator[EventGridControl]:
    """Event Grid control with a fast clock (1 s of Event Grid = 1 ms); defaults restored."""
    control = EventGridControl(emulator.url, emulator.ca_path)
    control.configure(time_scale=0.001, response_timeout=5.0)
    yield control
    control.configure(**DEFAULTS)


@pytest.fixture
def subscribe(grid: EventGridControl) -> Iterator[Subscribe]:
    """``subscribe(topic=..., endpoint=..., **options)`` with a unique name, removed after."""
    made: list[str] = []

    def _subscribe(**options: Any) -> dict[str, Any]:
        name = options.pop("name", None) or "sub" + uuid.uuid4().hex[:12]
        made.append(name)
        return grid.subscribe(name, **options)

    yield _subscribe
    for name in made:
        grid.unsubscribe(name)


@pytest.fixture
def hook() -> Iterator[RecordingWebhook]:
    with RecordingWebhook() as webhook:
        yield webhook


def _sample(reference_dir: Path, *parts: str) -> dict[str, Any]:
    path = reference_dir.joinpath("specs", "eventgrid", *parts)
    loaded: dict[str, Any] = json.loads(path.read_text())
    return loaded


def _new_version(vault: EmulatorVault, key: str) -> dict[str, Any]:
    """Create a key version through the emulator: it publishes KeyNewVersionCreated."""
    return vault.client.create_key(vault.name, key)


# --- envelopes and handshakes -------------------------------------------------------------------


def test_eventgrid_schema_delivery_matches_sample_and_sdk_model(
    subscribe: Subscribe,
    hook: RecordingWebhook,
    emulator_vault: EmulatorVault,
    reference_dir: Path,
) -> None:
    created = subscribe(name="keyward", topic=emulator_vault.arm_id, endpoint=hook.url)
    assert created["provisioningState"] == "Succeeded"
    validation = hook.requests[0]
    assert validation.event_type == "SubscriptionValidation"
    assert validation.json[0]["eventType"] == "Microsoft.EventGrid.SubscriptionValidationEvent"
    assert set(validation.json[0]["data"]) == {"validationCode", "validationUrl"}

    bundle = _new_version(emulator_vault, "rotating")
    (delivery,) = hook.wait_for(1)

    assert delivery.headers["Content-Type"] == "application/json; charset=utf-8"
    assert delivery.headers["aeg-subscription-name"] == "KEYWARD"
    assert delivery.headers["aeg-delivery-count"] == "0"
    assert delivery.headers["aeg-data-version"] == "1"
    assert delivery.headers["aeg-metadata-version"] == "1"
    body = delivery.json
    assert isinstance(body, list)
    assert len(body) == 1  # an array of one, as Event Grid sends by default
    sample = _sample(reference_dir, "keyvault", "event-grid-schema_secret_new_version_created.json")
    assert set(body[0]) == set(sample)
    assert set(body[0]["data"]) == set(sample["data"])

    event = EventGridEvent.from_dict(body[0])
    assert event.topic == emulator_vault.arm_id
    assert event.subject == "rotating"
    assert event.event_type == KEY_EVENT
    assert event.data_version == "1"
    assert event.data["Id"] == bundle["key"]["kid"]
    assert event.data["VaultName"] == emulator_vault.name


def test_cloudevents_delivery_matches_sample_and_sdk_model(
    subscribe: Subscribe,
    hook: RecordingWebhook,
    emulator_vault: EmulatorVault,
    reference_dir: Path,
) -> None:
    subscribe(topic=emulator_vault.arm_id, endpoint=hook.url, schema="CloudEventSchemaV1_0")
    handshake = hook.requests[0]
    assert handshake.method == "OPTIONS"
    assert handshake.headers["WebHook-Request-Origin"] == "eventgrid.azure.net"

    bundle = _new_version(emulator_vault, "rotating")
    (delivery,) = hook.wait_for(1)

    assert delivery.headers["Content-Type"] == "application/cloudevents+json; charset=utf-8"
    assert delivery.headers["aeg-metadata-version"] == "1.0"
    body = delivery.json
    assert isinstance(body, dict)  # structured mode: one event, not an array
    sample = _sample(
        reference_dir, "keyvault", "cloud-events-schema_secret_new_version_created.json"
    )
    assert set(body) == set(sample)
    assert set(body["data"]) == set(sample["data"])

    for event in (CloudEvent.from_dict(body), CloudEvent.from_json(delivery.body.decode())):
        assert event.source == emulator_vault.arm_id
        assert event.subject == "rotating"
        assert event.type == KEY_EVENT
        assert event.specversion == "1.0"
        assert isinstance(event.data, dict)
        assert event.data["Id"] == bundle["key"]["kid"]


def test_samples_parse_through_the_same_models(reference_dir: Path) -> None:
    """The published samples go through the path the emulated deliveries go through."""
    eg = _sample(reference_dir, "keyvault", "event-grid-schema_secret_new_version_created.json")
    ce = _sample(reference_dir, "keyvault", "cloud-events-schema_secret_new_version_created.json")
    assert EventGridEvent.from_dict(eg).event_type == "Microsoft.KeyVault.SecretNewVersionCreated"
    assert CloudEvent.from_dict(ce).type == "Microsoft.KeyVault.SecretNewVersionCreated"
    for name in ("event-grid-schema_resource_write_success.json",):
        assert EventGridEvent.from_dict(_sample(reference_dir, "resources", name)).data


@pytest.mark.parametrize("schema", ["EventGridSchema", "CloudEventSchemaV1_0"])
def test_resource_events_match_the_samples(
    schema: str,
    subscribe: Subscribe,
    hook: RecordingWebhook,
    emulator: RunningEmulator,
    emulator_vault_factory: VaultFactory,
    reference_dir: Path,
) -> None:
    """Role assignment create/delete through ARM reach the subscription topic's subscribers."""
    vault = emulator_vault_factory(rbac=True)
    subscribe(
        topic=SUB_TOPIC,
        endpoint=hook.url,
        schema=schema,
        subject_begins_with=vault.arm_id,
        included_event_types=[
            "Microsoft.Resources.ResourceWriteSuccess",
            "Microsoft.Resources.ResourceDeleteSuccess",
        ],
    )
    operator = str(emulator.client.create_principal(display_name="operator")["object_id"])
    client = AuthorizationManagementClient(
        EmulatorCredential(operator),
        DEFAULT_SUBSCRIPTION_ID,
        **management_client_kwargs(emulator.url, emulator.ca_path),
    )
    name = str(uuid.uuid4())
    role = (
        f"{SUB_TOPIC}/providers/Microsoft.Authorization/roleDefinitions/"
        f"{ROLE_KEY_VAULT_CRYPTO_USER}"
    )
    client.role_assignments.create(
        vault.arm_id, name, {"role_definition_id": role, "principal_id": vault.admin_id}
    )
    client.role_assignments.delete(vault.arm_id, name)
    write, delete = hook.wait_for(2)

    prefix = "event-grid-schema" if schema == "EventGridSchema" else "cloud-events-schema"
    for got, kind in ((write, "write"), (delete, "delete")):
        body = got.json[0] if schema == "EventGridSchema" else got.json
        sample = _sample(reference_dir, "resources", f"{prefix}_resource_{kind}_success.json")
        # One published sample spells CloudEvents' specversion "specVersion".
        assert {k.lower() for k in body} == {k.lower() for k in sample}
        assert set(body["data"]) == set(sample["data"])
        assert set(body["data"]["authorization"]) == set(sample["data"]["authorization"])
        if schema == "EventGridSchema":
            event = EventGridEvent.from_dict(body)
            assert event.topic == SUB_TOPIC
            assert event.data_version == "2"
            subject, data = event.subject, event.data
        else:
            cloud = CloudEvent.from_dict(body)
            assert cloud.source == SUB_TOPIC
            subject, data = str(cloud.subject), cloud.data
        assert subject == f"{vault.arm_id}/providers/Microsoft.Authorization/roleAssignments/{name}"
        assert isinstance(data, dict)
        assert data["operationName"] == f"Microsoft.Authorization/roleAssignments/{kind}"
        assert data["status"] == "Succeeded"
        assert data["subscriptionId"] == DEFAULT_SUBSCRIPTION_ID


def test_https_webhooks_are_verified_against_the_configured_ca(
    grid: EventGridControl,
    subscribe: Subscribe,
    emulator_vault: EmulatorVault,
    tmp_path: Path,
) -> None:
    """An https webhook is reachable once its CA is trusted, and refused before."""
    material = tls.generate(tmp_path / "webhook-tls")
    with RecordingWebhook(ssl_context=material.server_context()) as secure:
        assert secure.url.startswith("https://")
        with pytest.raises(ControlError) as untrusted:
            subscribe(topic=emulator_vault.arm_id, endpoint=secure.url)
        assert untrusted.value.status == 400
        grid.configure(webhook_ca_files=[str(material.ca_path)])
        try:
            subscribe(topic=emulator_vault.arm_id, endpoint=secure.url)
            _new_version(emulator_vault, "rotating")
            (delivery,) = secure.wait_for(1)
        finally:
            grid.configure(webhook_ca_files=[])
    assert delivery.json[0]["subject"] == "rotating"


def test_failed_eventgrid_handshake_refuses_the_subscription(
    grid: EventGridControl, emulator_vault: EmulatorVault
) -> None:
    with RecordingWebhook(answer_validation=None) as refusing:
        with pytest.raises(ControlError) as failure:
            grid.subscribe("refused", topic=emulator_vault.arm_id, endpoint=refusing.url)
    assert failure.value.status == 400
    assert "validation handshake failed" in failure.value.body["error"]["message"]
    assert "refused" not in {s["name"] for s in grid.subscriptions()}


def test_failed_cloudevents_handshake_refuses_the_subscription(
    grid: EventGridControl, emulator_vault: EmulatorVault
) -> None:
    with RecordingWebhook(allowed_origin=None) as refusing:
        with pytest.raises(ControlError) as failure:
            grid.subscribe(
                "refused",
                topic=emulator_vault.arm_id,
                endpoint=refusing.url,
                schema="CloudEventSchemaV1_0",
            )
    assert failure.value.status == 400


def test_manual_validation_holds_deliveries_until_the_validation_url_is_read(
    emulator: RunningEmulator,
    grid: EventGridControl,
    subscribe: Subscribe,
    emulator_vault: EmulatorVault,
) -> None:
    with RecordingWebhook(answer_validation=False) as manual:
        created = subscribe(name="manual", topic=emulator_vault.arm_id, endpoint=manual.url)
        assert created["provisioningState"] == "AwaitingManualAction"
        _new_version(emulator_vault, "before")
        assert grid.drain()
        assert manual.notifications() == []

        url = manual.requests[0].json[0]["data"]["validationUrl"]
        context = ssl.create_default_context(cafile=emulator.ca_path)
        with urllib.request.urlopen(url, context=context) as answer:
            assert answer.status == 200
        (listed,) = [s for s in grid.subscriptions() if s["name"] == "manual"]
        assert listed["provisioningState"] == "Succeeded"
        _new_version(emulator_vault, "after")
        (delivery,) = manual.wait_for(1)
        assert delivery.json[0]["subject"] == "after"


def test_filters_on_event_type_subject_and_topic(
    subscribe: Subscribe,
    grid: EventGridControl,
    emulator_vault_factory: VaultFactory,
) -> None:
    vault, other_vault = emulator_vault_factory(), emulator_vault_factory()
    with RecordingWebhook() as by_subject, RecordingWebhook() as by_type:
        subscribe(
            topic=vault.arm_id.upper(),  # ARM ids compare without case
            endpoint=by_subject.url,
            included_event_types=[KEY_EVENT.lower()],
            subject_begins_with="ROT",
        )
        subscribe(
            topic=vault.arm_id,
            endpoint=by_type.url,
            included_event_types=["Microsoft.KeyVault.KeyExpired"],
        )
        _new_version(vault, "other")
        _new_version(other_vault, "rotating")
        _new_version(vault, "rotating")
        assert grid.drain()
        (delivery,) = by_subject.notifications()
        assert by_type.notifications() == []
    assert delivery.json[0]["subject"] == "rotating"
    assert delivery.json[0]["topic"] == vault.arm_id


# --- retries, dead letters, test modes ----------------------------------------------------------


def test_retries_follow_the_schedule_until_success(
    grid: EventGridControl, subscribe: Subscribe, emulator_vault: EmulatorVault
) -> None:
    grid.configure(time_scale=0.01)
    with RecordingWebhook(statuses=[503, 500, 429]) as flaky:
        created = subscribe(topic=emulator_vault.arm_id, endpoint=flaky.url)
        _new_version(emulator_vault, "rotating")
        got = flaky.wait_for(4)
    assert [r.headers["aeg-delivery-count"] for r in got] == ["0", "1", "2", "3"]
    gaps = [b.at - a.at for a, b in itertools.pairwise(got)]
    # 10 s, 30 s, 60 s at a time scale of 1/100 (allowing for scheduling slack).
    for gap, expected in zip(gaps, (0.1, 0.3, 0.6), strict=True):
        assert expected * 0.9 <= gap <= expected + 0.5
    attempts = [a for a in grid.deliveries(created["name"]) if a["kind"] == "Notification"]
    assert [a["status"] for a in attempts] == [503, 500, 429, 200]
    assert [a["outcome"] for a in attempts] == ["Busy", "GenericError", "Busy", "Succeeded"]
    assert {a["time"][-1] for a in attempts} == {"Z"}


def test_client_errors_are_dead_lettered_without_retry(
    grid: EventGridControl, subscribe: Subscribe, emulator_vault: EmulatorVault
) -> None:
    with RecordingWebhook(statuses=[400]) as refusing:
        created = subscribe(topic=emulator_vault.arm_id, endpoint=refusing.url, dead_letter=True)
        _new_version(emulator_vault, "rotating")
        assert grid.drain()
        assert len(refusing.notifications()) == 1
    (letter,) = grid.dead_letters(created["name"])
    assert letter["deadLetterReason"] == "NonRetriableStatusCode"
    assert letter["lastHttpStatusCode"] == 400
    assert letter["lastDeliveryOutcome"] == "BadRequest"
    assert letter["deliveryAttempts"] == 1
    assert EventGridEvent.from_dict(letter).event_type == KEY_EVENT


def test_undeliverable_events_are_dropped_without_dead_lettering(
    grid: EventGridControl, subscribe: Subscribe, emulator_vault: EmulatorVault
) -> None:
    with RecordingWebhook(statuses=[401]) as refusing:
        created = subscribe(topic=emulator_vault.arm_id, endpoint=refusing.url)
        _new_version(emulator_vault, "rotating")
        assert grid.drain()
    assert grid.dead_letters(created["name"]) == []
    (dropped,) = grid.dead_letters(created["name"], dropped=True)
    assert dropped["lastDeliveryOutcome"] == "Unauthorized"


def test_max_delivery_attempts_then_dead_letter(
    grid: EventGridControl, subscribe: Subscribe, emulator_vault: EmulatorVault
) -> None:
    with RecordingWebhook(statuses=[500] * 10) as failing:
        created = subscribe(
            topic=emulator_vault.arm_id,
            endpoint=failing.url,
            max_delivery_attempts=3,
            dead_letter=True,
        )
        _new_version(emulator_vault, "rotating")
        assert grid.drain()
        assert len(failing.notifications()) == 3
    (letter,) = grid.dead_letters(created["name"])
    assert letter["deadLetterReason"] == "MaxDeliveryAttemptsExceeded"
    assert letter["deliveryAttempts"] == 3


def test_time_to_live_bounds_the_retries(
    grid: EventGridControl, subscribe: Subscribe, emulator_vault: EmulatorVault
) -> None:
    with RecordingWebhook(statuses=[500] * 10) as failing:
        created = subscribe(
            topic=emulator_vault.arm_id,
            endpoint=failing.url,
            event_ttl_minutes=1,
            dead_letter=True,
        )
        _new_version(emulator_vault, "rotating")
        assert grid.drain()
        # Attempts at 0 s, 10 s and 40 s; the next (100 s) would pass the 60 s TTL.
        assert len(failing.notifications()) == 3
    (letter,) = grid.dead_letters(created["name"])
    assert letter["deadLetterReason"] == "TimeToLiveExceeded"


def test_slow_answers_time_out_and_are_retried(
    grid: EventGridControl, subscribe: Subscribe, emulator_vault: EmulatorVault
) -> None:
    grid.configure(response_timeout=0.2)
    with RecordingWebhook(delay=0.5) as slow:
        created = subscribe(topic=emulator_vault.arm_id, endpoint=slow.url, max_delivery_attempts=2)
        _new_version(emulator_vault, "rotating")
        assert grid.drain()
    attempts = grid.deliveries(created["name"])
    assert [a["outcome"] for a in attempts if a["kind"] == "Notification"] == [
        "TimedOut",
        "TimedOut",
    ]


def test_duplicate_mode_delivers_twice(
    grid: EventGridControl,
    subscribe: Subscribe,
    hook: RecordingWebhook,
    emulator_vault: EmulatorVault,
) -> None:
    grid.configure(duplicate_rate=1.0, seed=7)
    created = subscribe(topic=emulator_vault.arm_id, endpoint=hook.url)
    _new_version(emulator_vault, "rotating")
    first, second = hook.wait_for(2)
    assert first.json == second.json
    attempts = grid.deliveries(created["name"])
    assert [a["duplicate"] for a in attempts if a["kind"] == "Notification"] == [False, True]


def _seed_with_clear_gaps(count: int, window: float, gap: float) -> tuple[int, list[float]]:
    """A seed whose reorder holds (``uniform(0, window)`` each) are ``gap`` apart or more."""
    for seed in range(1000):
        rng = random.Random(seed)
        holds = [rng.uniform(0, window) for _ in range(count)]
        ordered = sorted(holds)
        if min(b - a for a, b in itertools.pairwise(ordered)) >= gap:
            return seed, holds
    raise AssertionError("no seed found")


def test_reorder_mode_is_seeded(
    emulator: RunningEmulator,
    grid: EventGridControl,
    subscribe: Subscribe,
    hook: RecordingWebhook,
) -> None:
    """Eight events published in one request arrive in the order of their seeded holds."""
    seed, holds = _seed_with_clear_gaps(8, 1.6, 0.15)
    topic = grid.create_topic("burst" + uuid.uuid4().hex[:8], input_schema="CloudEventSchemaV1_0")
    subscribe(topic=topic["id"], endpoint=hook.url, schema="CloudEventSchemaV1_0")
    grid.configure(reorder_window=1.6, seed=seed)
    names = [f"k{i}" for i in range(8)]
    client = EventGridPublisherClient(topic["endpoint"], AzureKeyCredential(topic["key1"]))
    client.send(
        [CloudEvent(source="/burst", type="Burst", subject=n, data={}) for n in names],
        connection_verify=emulator.ca_path,
    )
    arrived = [r.json["subject"] for r in hook.wait_for(8)]
    assert arrived == [n for _, n in sorted(zip(holds, names, strict=True))]
    assert arrived != names


# --- the custom-topic sink (keyward's outgoing events) -----------------------------------------


def test_publisher_client_cloudevents_batch_with_key(
    emulator: RunningEmulator, grid: EventGridControl
) -> None:
    name = "out" + uuid.uuid4().hex[:8]
    topic = grid.create_topic(name, input_schema="CloudEventSchemaV1_0")
    client = EventGridPublisherClient(topic["endpoint"], AzureKeyCredential(topic["key1"]))
    events = [
        CloudEvent(source="/keyward", type="Keyward.KeyAccessLost", data={"account": f"face{i}"})
        for i in range(2)
    ]
    # The top-level client drops constructor kwargs for basic topics: verify per call.
    client.send(events, connection_verify=emulator.ca_path)
    got = grid.sunk_events(name)
    assert [g["event"]["data"]["account"] for g in got] == ["face0", "face1"]
    assert {g["auth"] for g in got} == {"key"}
    assert {g["contentType"] for g in got} == {"application/cloudevents-batch+json"}
    assert CloudEvent.from_dict(got[0]["event"]).type == "Keyward.KeyAccessLost"

    wrong = EventGridPublisherClient(topic["endpoint"], AzureKeyCredential("bm90IHRoZSBrZXk="))
    with pytest.raises(ClientAuthenticationError) as refused:
        wrong.send(events, connection_verify=emulator.ca_path)
    assert refused.value.status_code == 401
    assert len(grid.sunk_events(name)) == 2

    grid.clear_sunk(name)
    assert grid.sunk_events(name) == []


def test_publisher_client_eventgrid_schema_with_sas_token(
    emulator: RunningEmulator, grid: EventGridControl
) -> None:
    name = "out" + uuid.uuid4().hex[:8]
    topic = grid.create_topic(name)
    token = generate_sas(
        topic["endpoint"], topic["key2"], dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
    )
    client = EventGridPublisherClient(topic["endpoint"], AzureSasCredential(token))
    event = EventGridEvent(
        subject="face1", event_type="Keyward.KeyAccessLost", data={"a": 1}, data_version="1.0"
    )
    client.send([event], connection_verify=emulator.ca_path)
    (got,) = grid.sunk_events(name)
    assert got["auth"] == "sas"
    assert EventGridEvent.from_dict(got["event"]).subject == "face1"

    # A topic takes one input schema, as in Azure.
    with pytest.raises(HttpResponseError) as refused:
        client.send(
            [CloudEvent(source="/k", type="t", data={})], connection_verify=emulator.ca_path
        )
    assert refused.value.status_code == 400

    expired = generate_sas(
        topic["endpoint"], topic["key1"], dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)
    )
    stale = EventGridPublisherClient(topic["endpoint"], AzureSasCredential(expired))
    with pytest.raises(HttpResponseError) as refused:
        stale.send([event], connection_verify=emulator.ca_path)
    assert refused.value.status_code == 401


def test_publisher_client_with_bearer_token(
    emulator: RunningEmulator, grid: EventGridControl, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = "out" + uuid.uuid4().hex[:8]
    topic = grid.create_topic(name, input_schema="CloudEventSchemaV1_0")
    # REQUESTS_CA_BUNDLE is the other way to trust the emulator's CA.
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", emulator.ca_path)
    client = EventGridPublisherClient(topic["endpoint"], EmulatorCredential("publisher"))
    client.send(CloudEvent(source="/keyward", type="Keyward.Test", data=None))
    (got,) = grid.sunk_events(name)
    assert got["auth"] == "bearer"


def test_sink_unknown_topic_is_404(emulator: RunningEmulator) -> None:
    request = urllib.request.Request(
        f"{emulator.url}/eventgrid/topics/missing/api/events?api-version=2018-01-01",
        data=b"[]",
        method="POST",
        headers={"aeg-sas-key": "x", "Content-Type": "application/json"},
    )
    context = ssl.create_default_context(cafile=emulator.ca_path)
    with pytest.raises(urllib.error.HTTPError) as missing:
        urllib.request.urlopen(request, context=context)
    assert missing.value.code == 404


def test_custom_topic_events_reach_the_topics_subscribers(
    emulator: RunningEmulator, grid: EventGridControl, subscribe: Subscribe
) -> None:
    """What keyward publishes is delivered as sent (CloudEvents) or with ``topic`` set (Event
    Grid schema, also convertible to CloudEvents); CloudEvents input cannot go out as Event
    Grid schema, as Azure refuses that subscription."""
    cloud_topic = grid.create_topic(
        "ce" + uuid.uuid4().hex[:8], input_schema="CloudEventSchemaV1_0"
    )
    eg_topic = grid.create_topic("eg" + uuid.uuid4().hex[:8])
    with (
        RecordingWebhook() as cloud_hook,
        RecordingWebhook() as eg_hook,
        RecordingWebhook() as conv,
    ):
        subscribe(topic=cloud_topic["id"], endpoint=cloud_hook.url, schema="CloudEventSchemaV1_0")
        subscribe(topic=eg_topic["id"], endpoint=eg_hook.url)
        subscribe(topic=eg_topic["id"], endpoint=conv.url, schema="CloudEventSchemaV1_0")
        with pytest.raises(ControlError) as refused:
            subscribe(topic=cloud_topic["id"], endpoint=eg_hook.url)
        assert refused.value.status == 400

        sent = CloudEvent(
            source="/keyward/face", type="Keyward.KeyAccessLost", data={"account": "face1"},
            extensions={"keywardverdict": "lost"},
        )  # fmt: skip
        cloud_client = EventGridPublisherClient(
            cloud_topic["endpoint"], AzureKeyCredential(cloud_topic["key1"])
        )
        cloud_client.send(sent, connection_verify=emulator.ca_path)
        event = EventGridEvent(
            subject="face1", event_type="Keyward.KeyAccessLost", data={"a": 1}, data_version="1.0"
        )
        EventGridPublisherClient(eg_topic["endpoint"], AzureKeyCredential(eg_topic["key1"])).send(
            [event], connection_verify=emulator.ca_path
        )
        (cloud,) = cloud_hook.wait_for(1)
        (eg,) = eg_hook.wait_for(1)
        (converted,) = conv.wait_for(1)

    received = CloudEvent.from_dict(cloud.json)
    assert (received.id, received.source, received.type) == (sent.id, sent.source, sent.type)
    assert received.extensions == {"keywardverdict": "lost"}
    delivered = EventGridEvent.from_dict(eg.json[0])
    assert delivered.id == str(event.id)
    assert delivered.topic == eg_topic["id"]
    assert delivered.data_version == "1.0"
    as_cloud = CloudEvent.from_dict(converted.json)
    assert (as_cloud.id, as_cloud.source, as_cloud.type) == (
        str(event.id),
        eg_topic["id"],
        "Keyward.KeyAccessLost",
    )
