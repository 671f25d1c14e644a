"""The local emulator's Key Vault events parse: its payload builders and keyward's parser agree.

Built in-process from the emulator's own model (no server), so a change on either side that
breaks the end-to-end flow fails here first, with a readable reason.
"""

from __future__ import annotations

import pytest

from devtools.emulator.eventgrid_model import SCHEMAS, Event
from devtools.emulator.lifecycle import (
    EVENT_EXPIRED,
    EVENT_NEAR_EXPIRY,
    EVENT_NEW_VERSION,
    event_data,
)
from devtools.emulator.state import Key, KeyVersion, Vault
from shared.crypto import VaultAllowList
from shared.events import AccessChangeEvent, KeyEventKind, KeyVaultEvent, parse_event

VERSION = "0123456789abcdef0123456789abcdef"


def emulated() -> tuple[Vault, Key, KeyVersion]:
    version = KeyVersion(
        version=VERSION,
        kty="RSA",
        key_size=2048,
        key_ops=["wrapKey", "unwrapKey"],
        private="",
        not_before=1_700_000_000.0,
        expires=1_900_000_000.0,
    )
    vault = Vault(name="emu-kv", port=8443)
    return vault, Key(name="face-cmk", versions=[version]), version


@pytest.mark.parametrize("schema", SCHEMAS)
@pytest.mark.parametrize(
    ("event_type", "kind"),
    [
        (EVENT_NEW_VERSION, KeyEventKind.NEW_VERSION),
        (EVENT_NEAR_EXPIRY, KeyEventKind.NEAR_EXPIRY),
        (EVENT_EXPIRED, KeyEventKind.EXPIRED),
    ],
)
def test_emulator_key_events_parse(schema: str, event_type: str, kind: KeyEventKind) -> None:
    vault, key, version = emulated()
    allow = VaultAllowList.parse(f"emu-kv={vault.url}")
    event = Event(vault.arm_id, event_type, key.name, event_data(vault, key, version), 1.8e9)
    parsed = parse_event(event.render(schema), allow)
    assert isinstance(parsed, KeyVaultEvent)
    assert parsed.kind is kind
    assert parsed.key_id.id == f"{vault.url}/keys/face-cmk/{VERSION}"


def test_emulator_event_for_a_vault_off_the_allow_list_is_refused() -> None:
    vault, key, version = emulated()
    event = Event(vault.arm_id, EVENT_NEW_VERSION, key.name, event_data(vault, key, version), 0)
    with pytest.raises(ValueError):
        parse_event(event.to_eventgrid(), VaultAllowList.parse("contoso-kv"))


def test_emulator_access_policy_event_parses() -> None:
    vault, _, _ = emulated()
    data = {"Id": vault.url + "/", "VaultName": vault.name, "ObjectType": "Vault"}
    event = Event(vault.arm_id, "Microsoft.KeyVault.VaultAccessPolicyChanged", vault.name, data, 0)
    parsed = parse_event(event.to_cloudevent(), VaultAllowList.parse(f"emu-kv={vault.url}"))
    assert isinstance(parsed, AccessChangeEvent)
