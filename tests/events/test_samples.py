"""Every published sample in ../shared/specs/eventgrid parses, as delivered and as key events."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from shared.crypto import VaultAllowList
from shared.errors import EventRejectedError
from shared.events import (
    AccessChangeEvent,
    IgnoredEvent,
    KeyEventKind,
    KeyVaultEvent,
    RejectionReason,
    parse_event,
    route,
)
from tests.conftest import REFERENCE

SAMPLES = REFERENCE / "specs" / "eventgrid"
SAMPLE_FILES = sorted(p for p in SAMPLES.rglob("*.json") if p.name != "KeyVault.json")
REAL_SUB = "2b7e1c3a-4d5f-4a6b-8c9d-0e1f2a3b4c5d"
ALLOW = VaultAllowList.parse("sample-kv")


def load(path: Path) -> dict[str, Any]:
    return dict(json.loads(path.read_text()))


def test_the_samples_are_there() -> None:
    assert len(SAMPLE_FILES) == 7, SAMPLE_FILES


@pytest.mark.parametrize("path", SAMPLE_FILES, ids=lambda p: p.name)
def test_each_sample_parses_as_delivered(path: Path) -> None:
    parsed = parse_event(load(path), ALLOW)
    # Secret events and the storage-account resource events are none of keyward's business.
    assert isinstance(parsed, IgnoredEvent)


KEY_SAMPLES = [p for p in SAMPLE_FILES if "secret" in p.name]


def as_key_event(path: Path, event_type: str) -> dict[str, Any]:
    text = path.read_text().replace("{subscription-id}", REAL_SUB)
    text = text.replace("/secrets/newsecret/", "/keys/newkey/").replace("newsecret", "newkey")
    text = text.replace('"Secret"', '"Key"')
    event = dict(json.loads(text))
    event["type" if "type" in event else "eventType"] = event_type
    return event


@pytest.mark.parametrize("path", KEY_SAMPLES, ids=lambda p: p.name)
@pytest.mark.parametrize(
    "event_type",
    [
        "Microsoft.KeyVault.KeyNewVersionCreated",
        "Microsoft.KeyVault.KeyNearExpiry",
        "Microsoft.KeyVault.KeyExpired",
    ],
)
def test_secret_samples_rewritten_as_key_events_parse(path: Path, event_type: str) -> None:
    parsed = parse_event(as_key_event(path, event_type), ALLOW)
    assert isinstance(parsed, KeyVaultEvent)
    assert parsed.key_id.id == (
        "https://sample-kv.vault.azure.net/keys/newkey/ee059b2bb5bc48398a53b168c6cdcb10"
    )
    assert parsed.nbf is not None
    assert parsed.exp is not None
    assert route(parsed)


def test_the_old_camel_case_sample_with_stray_spaces() -> None:
    event = as_key_event(KEY_SAMPLES[0], "Microsoft.KeyVault.KeyNewVersionCreated")
    event["data"] = {
        "id": event["data"]["Id"],
        "vaultName": "sample-kv",
        "objectType": "Key",
        "ObjectName ": "newkey",
        "version": " ee059b2bb5bc48398a53b168c6cdcb10",
        "nbf": "1559081980",
        "exp": "1559082102",
    }
    parsed = parse_event(event, ALLOW)
    assert isinstance(parsed, KeyVaultEvent)
    assert parsed.kind is KeyEventKind.NEW_VERSION


def test_a_sample_with_its_placeholder_subscription_is_a_bad_topic() -> None:
    event = as_key_event(KEY_SAMPLES[0], "Microsoft.KeyVault.KeyExpired")
    key = "source" if "source" in event else "topic"
    event[key] = event[key].replace(REAL_SUB, "{subscription-id}")
    with pytest.raises(EventRejectedError) as info:
        parse_event(event, ALLOW)
    assert info.value.reason == RejectionReason.BAD_TOPIC


@pytest.mark.parametrize(
    "path", [p for p in SAMPLE_FILES if "resource" in p.name], ids=lambda p: p.name
)
def test_resource_samples_about_a_role_assignment_parse(path: Path) -> None:
    text = path.read_text().replace("{subscription-id}", REAL_SUB)
    text = text.replace("{resource-group}", "sample-rg")
    text = text.replace(
        "providers/Microsoft.Storage/storageAccounts/{storage-name}",
        "providers/Microsoft.KeyVault/vaults/sample-kv/providers/Microsoft.Authorization/"
        "roleAssignments/6b1e4d1f-0000-4000-8000-000000000001",
    )
    parsed = parse_event(json.loads(text), ALLOW)
    assert isinstance(parsed, AccessChangeEvent)
    assert parsed.scope.vault_name == "sample-kv"
