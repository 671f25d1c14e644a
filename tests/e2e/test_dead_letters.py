"""Issue 14, dead letters, end to end: a rotation event the emulator's Event Grid cannot
deliver (the endpoint fails until the subscription's max attempts) lands in the
subscription's dead-letter container in Azurite, in Azure's blob layout; ``GET /api/status``
shows it under its vault; ``keyward replay-dead-letters`` hands it to the Event Grid trigger's
own handler, with the same outcome (the same jobs planned, the event in the ledger) as a
fresh delivery; a second replay changes nothing."""

from __future__ import annotations

import asyncio
import io
import json
import re
import uuid
from typing import Any

import pytest
from azure.storage.blob.aio import ContainerClient
from rich.console import Console

from devtools.emulator.eventgrid_client import EventGridControl
from devtools.emulator.eventgrid_webhook import RecordingWebhook
from shared.cli import main
from shared.composition import AppContext
from shared.events import original_event
from shared.services.key_events import DUPLICATE, HANDLED
from shared.settings import Settings
from tests.e2e.conftest import Stack, call

pytestmark = [pytest.mark.azurite, pytest.mark.emulator]

KEY_EVENT = "Microsoft.KeyVault.KeyNewVersionCreated"
#: Azure's dead-letter blob name: SUBSCRIPTION/yyyy/M/d/H/guid.json (docs/emulator.md).
BLOB_NAME = re.compile(r"^[A-Z0-9-]+/\d{4}/\d{1,2}/\d{1,2}/\d{1,2}/[0-9a-f-]{36}\.json$")


def _replay(*args: str) -> tuple[int, dict[str, Any]]:
    out = io.StringIO()
    code = main(["replay-dead-letters", "--json", *args], Console(file=out, width=400))
    return code, json.loads(out.getvalue())


async def _dead_letter_a_rotation(stack: Stack, container: str) -> tuple[str, dict[str, Any]]:
    key_name = f"dl-{uuid.uuid4().hex[:8]}"
    await call(stack.key_client.create_rsa_key, key_name, size=2048)
    grid = EventGridControl(stack.emulator.url, stack.emulator.ca_path)
    await call(grid.configure, time_scale=0.001, response_timeout=5.0)
    name = f"keyward-{uuid.uuid4().hex[:8]}"
    try:
        with RecordingWebhook(statuses=[500] * 10) as failing:
            await call(grid.subscribe, name, topic=stack.vault.arm_id, endpoint=failing.url,
                       included_event_types=[KEY_EVENT], max_delivery_attempts=2,
                       dead_letter_container=container,
                       dead_letter_connection=stack.azurite.connection_string)  # fmt: skip
            rotated = await call(stack.key_client.create_rsa_key, key_name, size=2048)
            assert await call(grid.drain)
            assert len(failing.notifications()) == 2
        (letter,) = await call(grid.dead_letters, name)
    finally:
        await call(grid.unsubscribe, name)
        await call(grid.configure, time_scale=1.0, response_timeout=30.0)
    assert letter["deadLetterReason"] == "MaxDeliveryAttemptsExceeded"
    assert rotated.properties.version in json.dumps(letter)
    return str(rotated.properties.version), letter


async def test_a_dead_lettered_rotation_is_shown_and_replayed_like_a_fresh_delivery(
    quiet_stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    stack = quiet_stack
    container = f"deadletters{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("KEYWARD_DEADLETTER_CONTAINER", container)
    _, letter = await _dead_letter_a_rotation(stack, container)
    blobs = ContainerClient.from_connection_string(stack.azurite.connection_string, container)
    context = await AppContext.build(Settings.from_env())
    try:
        (blob,) = [b.name async for b in blobs.list_blobs()]
        assert BLOB_NAME.match(blob), blob
        content = json.loads(await (await blobs.download_blob(blob)).readall())
        assert [event["id"] for event in content] == [letter["id"]]
        for field in ("deadLetterReason", "deliveryAttempts", "lastDeliveryOutcome",
                      "publishTime", "lastDeliveryAttemptTime"):  # fmt: skip
            assert field in content[0]

        # Status: the vault's dead-lettered event, bounded.
        shown = (await context.admin().status())["dead_letters"]
        vault = stack.vault.name.lower()
        assert shown["enabled"] is True
        assert shown["more"] is False
        assert shown["vaults"][vault]["events"] == 1
        assert shown["vaults"][vault]["reasons"] == {"MaxDeliveryAttemptsExceeded": 1}

        # A dry run changes nothing.
        code, dry = await asyncio.to_thread(_replay, "--dry-run")
        assert code == 0
        assert [entry["blob"] for entry in dry["replayed"]] == [blob]
        assert [b.name async for b in blobs.list_blobs()] == [blob]

        # The replay: the trigger's handler, then the blob moves under replayed/.
        code, report = await asyncio.to_thread(_replay, "--vault", stack.vault.name)
        assert code == 0
        (entry,) = report["replayed"]
        assert entry["outcomes"] == [HANDLED]
        assert entry["jobs"]
        assert [b.name async for b in blobs.list_blobs()] == [f"replayed/{blob}"]

        # The same outcome as a fresh delivery: the event is in the ledger (delivered again,
        # it is a duplicate) and a fresh event of the same rotation plans the same jobs.
        event = original_event(letter)
        event.pop("subscription", None)
        again = await context.key_events().handle(event)
        assert again.status == DUPLICATE
        fresh = await context.key_events().handle({**event, "id": str(uuid.uuid4())})
        assert fresh.status == HANDLED
        assert list(fresh.jobs) == entry["jobs"]

        # A second replay changes nothing; status shows no dead letter.
        code, second = await asyncio.to_thread(_replay)
        assert code == 0
        assert (second["replayed"], second["rejected"], second["failed"]) == ([], [], [])
        assert [b.name async for b in blobs.list_blobs()] == [f"replayed/{blob}"]
        assert (await context.admin().status())["dead_letters"]["vaults"] == {}
    finally:
        await context.aclose()
        await blobs.delete_container()
        await blobs.close()
