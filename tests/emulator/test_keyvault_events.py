"""Key events the data plane publishes: new versions, auto-rotation, near expiry, expiry.

Runs an in-process :class:`EmulatorServer` so a recording publisher can stand in for Event
Grid delivery (``eventgrid.py`` is tested on its own) and the clock can be moved directly.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import requests
from azure.keyvault.keys import (
    JsonWebKey,
    KeyRotationLifetimeAction,
    KeyRotationPolicy,
    KeyRotationPolicyAction,
    KeyType,
)
from azure.keyvault.keys.aio import KeyClient
from cryptography.hazmat.primitives.asymmetric import rsa

from devtools.emulator.credential import AsyncEmulatorCredential
from devtools.emulator.pytest_plugin import ALL_KEY_PERMISSIONS, EmulatorVault
from devtools.emulator.server import EmulatorServer
from devtools.emulator.state import AccessPolicy, EmulatorState, Principal, Vault
from tests.conftest import REFERENCE

DAY = 86400.0


@dataclass
class Published:
    topic: str
    event_type: str
    subject: str
    data: dict[str, Any]


class Recorder:
    def __init__(self) -> None:
        self.events: list[Published] = []

    def publish(self, topic: str, event_type: str, subject: str, data: dict[str, Any]) -> None:
        self.events.append(Published(topic, event_type, subject, data))

    def of(self, event_type: str) -> list[Published]:
        return [e for e in self.events if e.event_type == f"Microsoft.KeyVault.{event_type}"]


@dataclass
class World:
    server: EmulatorServer
    vault: Vault
    recorder: Recorder
    client: KeyClient


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    state = EmulatorState()
    server = EmulatorServer(state, port=0, tls_dir=tmp_path / "tls")
    await server.start()
    recorder = Recorder()
    state.events = recorder
    state.principals["admin"] = Principal(object_id="admin")
    vault = state.add_vault(Vault(name="eventsvault"))
    vault.access_policies.append(AccessPolicy(object_id="admin", keys=ALL_KEY_PERMISSIONS))
    client = KeyClient(
        vault.url,
        AsyncEmulatorCredential("admin"),
        connection_verify=str(server.ca_path),
        verify_challenge_resource=False,
    )
    try:
        yield World(server, vault, recorder, client)
    finally:
        await client.close()
        await server.stop()


def _rsa_jwk() -> JsonWebKey:
    numbers = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_numbers()

    def raw(value: int) -> bytes:
        return value.to_bytes((value.bit_length() + 7) // 8, "big")

    return JsonWebKey(
        kty=KeyType.rsa,
        n=raw(numbers.public_numbers.n),
        e=raw(numbers.public_numbers.e),
        d=raw(numbers.d),
        p=raw(numbers.p),
        q=raw(numbers.q),
    )


def _spec_properties() -> set[str]:
    spec = json.loads((REFERENCE / "specs/eventgrid/keyvault/KeyVault.json").read_text())
    return set(spec["definitions"]["KeyVaultKeyNewVersionCreatedEventData"]["properties"])


async def test_create_import_rotate_publish_new_versions(world: World) -> None:
    expires = datetime.fromtimestamp(int(world.server.state.clock.now() + 90 * DAY), UTC)
    created = await world.client.create_rsa_key("evented", expires_on=expires)
    rotated = await world.client.rotate_key("evented")
    imported = await world.client.import_key("imported", _rsa_jwk())
    events = world.recorder.of("KeyNewVersionCreated")
    assert [e.data["Version"] for e in events] == [
        created.properties.version,
        rotated.properties.version,
        imported.properties.version,
    ]
    first = events[0]
    assert first.topic == world.vault.arm_id
    assert first.subject == "evented"
    assert set(first.data) == _spec_properties()
    assert first.data == {
        "Id": created.id,
        "VaultName": "eventsvault",
        "ObjectType": "Key",
        "ObjectName": "evented",
        "Version": created.properties.version,
        "NBF": None,
        "EXP": int(expires.timestamp()),
    }


async def test_update_delete_recover_publish_nothing(world: World) -> None:
    await world.client.create_rsa_key("quiet")
    world.recorder.events.clear()
    await world.client.update_key_properties("quiet", enabled=False)
    await world.client.update_key_properties("quiet", enabled=True)
    poller = await world.client.delete_key("quiet")
    assert poller.name == "quiet"
    await world.client.recover_deleted_key("quiet")
    assert world.recorder.events == []


async def test_policy_rotates_when_due(world: World) -> None:
    key = await world.client.create_rsa_key("auto")
    await world.client.update_key_rotation_policy(
        "auto",
        KeyRotationPolicy(),
        lifetime_actions=[
            KeyRotationLifetimeAction(KeyRotationPolicyAction.rotate, time_after_create="P30D")
        ],
        expires_in="P90D",
    )
    world.recorder.events.clear()
    world.server.state.clock.advance(29 * DAY)
    await world.server.tick()
    assert world.recorder.events == []
    world.server.state.clock.advance(2 * DAY)
    await world.server.tick()
    [event] = world.recorder.of("KeyNewVersionCreated")
    latest = await world.client.get_key("auto")
    assert latest.properties.version != key.properties.version
    assert event.data["Version"] == latest.properties.version
    assert event.data["EXP"] == pytest.approx(world.server.state.clock.now() + 90 * DAY, abs=5)
    await world.server.tick()
    assert len(world.recorder.of("KeyNewVersionCreated")) == 1  # once per due rotation


async def test_near_expiry_then_expired_once_each(world: World) -> None:
    now = world.server.state.clock.now()
    expires = datetime.fromtimestamp(int(now + 40 * DAY), UTC)
    key = await world.client.create_rsa_key("ageing", expires_on=expires)
    world.recorder.events.clear()
    world.server.state.clock.advance(9 * DAY)
    await world.server.tick()
    assert world.recorder.events == []
    world.server.state.clock.advance(2 * DAY)  # within the default 30-day lead
    await world.server.tick()
    await world.server.tick()
    [near] = world.recorder.of("KeyNearExpiry")
    assert near.data["Version"] == key.properties.version
    assert near.data["EXP"] == int(expires.timestamp())
    world.server.state.clock.advance(30 * DAY)
    await world.server.tick()
    await world.server.tick()
    [expired] = world.recorder.of("KeyExpired")
    assert expired.subject == "ageing"
    assert len(world.recorder.of("KeyNearExpiry")) == 1


async def test_policy_notify_lead_time(world: World) -> None:
    now = world.server.state.clock.now()
    await world.client.create_rsa_key(
        "lead", expires_on=datetime.fromtimestamp(int(now + 20 * DAY), UTC)
    )
    await world.client.update_key_rotation_policy(
        "lead",
        KeyRotationPolicy(),
        lifetime_actions=[
            KeyRotationLifetimeAction(KeyRotationPolicyAction.notify, time_before_expiry="P7D")
        ],
    )
    await world.server.tick()
    assert world.recorder.of("KeyNearExpiry") == []  # 20 days out, lead is 7
    world.server.state.clock.advance(14 * DAY)
    await world.server.tick()
    assert len(world.recorder.of("KeyNearExpiry")) == 1


def test_data_plane_events_reach_event_grid(emulator_vault: EmulatorVault) -> None:
    """In the real process the publisher is Event Grid (``eventgrid.attach``)."""
    key = emulator_vault.key_client().create_rsa_key("published")
    answer = requests.get(
        f"{emulator_vault.emulator.url}/control/eventgrid/events",
        params={
            "topic": emulator_vault.arm_id,
            "eventType": "Microsoft.KeyVault.KeyNewVersionCreated",
        },
        verify=emulator_vault.emulator.ca_path,
        timeout=10,
    )
    assert answer.status_code == 200
    [event] = answer.json()["value"]
    assert event["subject"] == "published"
    assert event["topic"] == emulator_vault.arm_id
    assert event["data"]["Id"] == key.id
