"""Emulated Event Grid delivery into the local Functions host, through azure.functions.

keyward's ``key_events`` function receives Key Vault events through the Event Grid trigger
binding; this drives the same path end to end: the emulator validates the host's webhook
(both handshakes), delivers a real KeyNewVersionCreated, and the binding's converter hands the
function an ``EventGridEvent`` or a ``CloudEvent``.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import azure.functions as func
import pytest

from devtools.emulator.eventgrid_client import EventGridControl
from devtools.emulator.eventgrid_webhook import BackgroundLoop
from devtools.emulator.pytest_plugin import EmulatorVault, RunningEmulator
from devtools.localhost import bindings
from devtools.localhost.host import LocalFunctionsHost

KEY_EVENT = "Microsoft.KeyVault.KeyNewVersionCreated"


class _Received:
    def __init__(self) -> None:
        self.items: list[Any] = []
        self.lock = threading.Lock()

    def add(self, item: Any) -> None:
        with self.lock:
            self.items.append(item)

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.items) >= count:
                    return list(self.items)
            time.sleep(0.01)
        raise TimeoutError(f"{len(self.items)} of {count} invocations")


RECEIVED = _Received()


def _app() -> func.FunctionApp:
    app = func.FunctionApp()

    @app.function_name("on_key_event")
    @app.event_grid_trigger(arg_name="event")
    def on_key_event(event: func.EventGridEvent) -> None:
        RECEIVED.add(event)

    return app


@pytest.fixture
def functions_host() -> Iterator[LocalFunctionsHost]:
    RECEIVED.items.clear()
    background = BackgroundLoop()
    host = LocalFunctionsHost(_app(), settings={}, run_timers=False, run_queues=False)
    background.run(host.start())
    try:
        yield host
    finally:
        background.run(host.stop())
        background.stop()


@pytest.mark.parametrize("schema", ["EventGridSchema", "CloudEventSchemaV1_0"])
def test_key_events_reach_an_event_grid_triggered_function(
    schema: str,
    emulator: RunningEmulator,
    emulator_vault: EmulatorVault,
    functions_host: LocalFunctionsHost,
) -> None:
    grid = EventGridControl(emulator.url, emulator.ca_path)
    name = f"host-{schema.lower()[:5]}-{emulator_vault.name}"
    created = grid.subscribe(
        name,
        topic=emulator_vault.arm_id,
        endpoint=functions_host.event_grid_webhook_url("on_key_event"),
        schema=schema,
        included_event_types=[KEY_EVENT],
    )
    try:
        assert created["provisioningState"] == "Succeeded"
        bundle = emulator_vault.client.create_key(emulator_vault.name, "rotating")
        (event,) = RECEIVED.wait_for(1)
    finally:
        grid.unsubscribe(name)

    if schema == "EventGridSchema":
        assert isinstance(event, func.EventGridEvent)
        assert event.topic == emulator_vault.arm_id
        assert event.event_type == KEY_EVENT
        assert event.data_version == "1"
    else:
        assert isinstance(event, func.CloudEvent)
        assert event.source == emulator_vault.arm_id
        assert event.type == KEY_EVENT
    assert event.subject == "rotating"
    data = event.get_json()
    assert data["Id"] == bundle["key"]["kid"]
    assert data["ObjectType"] == "Key"


@pytest.mark.parametrize(
    ("path", "expected_type"),
    [
        ("keyvault/event-grid-schema_secret_new_version_created.json", func.EventGridEvent),
        ("keyvault/cloud-events-schema_secret_new_version_created.json", func.CloudEvent),
        ("resources/event-grid-schema_resource_write_success.json", func.EventGridEvent),
        ("resources/cloud-events-schema_resource_write_success.json", func.CloudEvent),
    ],
)
def test_published_samples_decode_through_the_same_binding(
    path: str, expected_type: type, reference_dir: Path
) -> None:
    """Azure's samples go through the converter the emulated deliveries above go through."""
    sample = json.loads(reference_dir.joinpath("specs", "eventgrid", path).read_text())
    event = bindings.event_grid_input(sample)
    assert isinstance(event, expected_type)
    assert event.subject == sample["subject"]
    assert event.get_json() == sample["data"]
