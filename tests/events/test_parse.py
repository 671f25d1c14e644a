"""parse_event: what is accepted, and a specific reason for everything that is not."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from shared.crypto import VaultAllowList
from shared.errors import EventRejectedError, InvalidInputError
from shared.events import (
    AccessChangeEvent,
    AccessChangeKind,
    AccessScope,
    EventSchema,
    IgnoredEvent,
    KeyEventKind,
    KeyVaultEvent,
    RejectionReason,
    dedup_key,
    parse_event,
)
from tests.events.conftest import (
    EVENT_ID,
    KEY,
    SUB,
    V2,
    VAULT,
    envelope,
    key_event,
    mutated,
    vault_arm_id,
)

R = RejectionReason


def rejected(payload: Any, allow_list: VaultAllowList) -> EventRejectedError:
    with pytest.raises(EventRejectedError) as info:
        parse_event(payload, allow_list)
    return info.value


@pytest.mark.parametrize("schema", ["eventgrid", "cloudevents"])
@pytest.mark.parametrize(
    ("event_type", "kind"),
    [
        ("Microsoft.KeyVault.KeyNewVersionCreated", KeyEventKind.NEW_VERSION),
        ("Microsoft.KeyVault.KeyNearExpiry", KeyEventKind.NEAR_EXPIRY),
        ("Microsoft.KeyVault.KeyExpired", KeyEventKind.EXPIRED),
    ],
)
def test_key_events_parse_in_both_schemas(
    schema: str, event_type: str, kind: KeyEventKind, allow_list: VaultAllowList
) -> None:
    event = parse_event(key_event(event_type, schema=schema), allow_list)
    assert isinstance(event, KeyVaultEvent)
    assert event.kind is kind
    assert event.vault_name == VAULT
    assert event.key_id.name == KEY
    assert event.version == V2 == event.key_id.version
    assert event.nbf == datetime(2019, 5, 28, 22, 19, 40, tzinfo=UTC)
    assert event.exp == datetime(2020, 5, 28, 22, 19, 40, tzinfo=UTC)
    assert event.event_time == datetime(2026, 11, 29, 1, 8, 33, 103673, tzinfo=UTC)
    expected = EventSchema.EVENT_GRID if schema == "eventgrid" else EventSchema.CLOUD_EVENTS
    assert event.schema is expected
    assert event.event_id == EVENT_ID


def test_json_text_and_bytes_are_accepted(allow_list: VaultAllowList) -> None:
    text = json.dumps(key_event())
    assert parse_event(text, allow_list) == parse_event(text.encode(), allow_list)


def test_camel_case_names_and_stray_spaces_are_read(allow_list: VaultAllowList) -> None:
    event = key_event()
    event["data"] = {
        "id ": f" https://{VAULT}.vault.azure.net/keys/{KEY}/{V2} ",
        " vaultName": VAULT.upper(),
        "objectType": "key",
        "ObjectName ": f" {KEY}",
        "version": f" {V2} ",
        "nbf": " 1559081980 ",
        "exp": None,
    }
    parsed = parse_event(event, allow_list)
    assert isinstance(parsed, KeyVaultEvent)
    assert parsed.version == V2
    assert parsed.exp is None


def test_cloud_event_with_capital_spec_version(allow_list: VaultAllowList) -> None:
    event = key_event(schema="cloudevents")
    event["specVersion"] = event.pop("specversion")
    assert isinstance(parse_event(event, allow_list), KeyVaultEvent)


@pytest.mark.parametrize(
    ("nbf", "expected"),
    [
        (1559081980, datetime(2019, 5, 28, 22, 19, 40, tzinfo=UTC)),
        (1559081980.5, datetime(2019, 5, 28, 22, 19, 40, 500000, tzinfo=UTC)),
        ("1559081980", datetime(2019, 5, 28, 22, 19, 40, tzinfo=UTC)),
        ("2019-05-28T22:19:40Z", datetime(2019, 5, 28, 22, 19, 40, tzinfo=UTC)),
        (None, None),
        ("", None),
    ],
)
def test_nbf_as_number_string_or_null(
    nbf: Any, expected: datetime | None, allow_list: VaultAllowList
) -> None:
    parsed = parse_event(key_event(nbf=nbf), allow_list)
    assert isinstance(parsed, KeyVaultEvent)
    assert parsed.nbf == expected


def test_near_expiry_may_name_an_unversioned_key(allow_list: VaultAllowList) -> None:
    parsed = parse_event(key_event("Microsoft.KeyVault.KeyNearExpiry", version=None), allow_list)
    assert isinstance(parsed, KeyVaultEvent)
    assert parsed.version is None


def test_dev_origin_vault_from_the_allow_list(allow_list: VaultAllowList) -> None:
    event = key_event(vault="emu")
    event["data"]["Id"] = f"https://127.0.0.1:8443/keys/{KEY}/{V2}"
    parsed = parse_event(event, allow_list)
    assert isinstance(parsed, KeyVaultEvent)
    assert parsed.key_id.vault_url == "https://127.0.0.1:8443"


def test_managed_hsm_topic_and_key(allow_list: VaultAllowList) -> None:
    hsm_list = VaultAllowList.parse("https://contoso-hsm.managedhsm.azure.net")
    event = key_event(vault="contoso-hsm")
    event["topic"] = event["topic"].replace("vaults", "managedHSMs")
    event["data"]["Id"] = f"https://contoso-hsm.managedhsm.azure.net/keys/{KEY}/{V2}"
    parsed = parse_event(event, hsm_list)
    assert isinstance(parsed, KeyVaultEvent)
    assert parsed.key_id.managed_hsm


def test_provider_segments_are_case_insensitive(allow_list: VaultAllowList) -> None:
    event = key_event()
    event["topic"] = event["topic"].replace(
        "Microsoft.KeyVault/vaults", "microsoft.keyvault/VAULTS"
    )
    assert isinstance(parse_event(event, allow_list), KeyVaultEvent)


OTHER_KEY_ID = f"https://other-kv.vault.azure.net/keys/{KEY}/{V2}"
CASES: list[tuple[str, Any, RejectionReason]] = [
    ("not json", "{not json", R.MALFORMED_JSON),
    ("bad utf-8", b"\xff\xfe{", R.MALFORMED_JSON),
    ("deep nesting", "[" * 100_000 + "]" * 100_000, R.MALFORMED_JSON),
    ("too large", " " * (1024 * 1024 + 1), R.TOO_LARGE),
    ("batch array", [key_event()], R.NOT_AN_OBJECT),
    ("number", 42, R.NOT_AN_OBJECT),
    ("no id", mutated(key_event(), ("id",), ...), R.MISSING_FIELD),
    ("blank id", mutated(key_event(), ("id",), "  "), R.MISSING_FIELD),
    ("id not text", mutated(key_event(), ("id",), 7), R.BAD_FIELD_TYPE),
    ("id unprintable", mutated(key_event(), ("id",), "a\nb"), R.BAD_FIELD_TYPE),
    ("no type", mutated(key_event(), ("eventType",), ...), R.MISSING_FIELD),
    ("no eventTime", mutated(key_event(), ("eventTime",), ...), R.MISSING_FIELD),
    ("bad eventTime", mutated(key_event(), ("eventTime",), "yesterday"), R.BAD_TIMESTAMP),
    ("no data", mutated(key_event(), ("data",), ...), R.MISSING_FIELD),
    ("data not object", mutated(key_event(), ("data",), "x"), R.BAD_FIELD_TYPE),
    ("unknown type", mutated(key_event(), ("eventType",), "Contoso.Thing"), R.UNKNOWN_EVENT_TYPE),
    (
        "failure type",
        mutated(key_event(), ("eventType",), "Microsoft.Resources.ResourceWriteFailure"),
        R.UNKNOWN_EVENT_TYPE,
    ),
    ("spec 0.3", mutated(key_event(schema="ce"), ("specversion",), "0.3"), R.UNSUPPORTED_SCHEMA),
    ("no topic", mutated(key_event(), ("topic",), ...), R.MISSING_FIELD),
    ("topic not arm", mutated(key_event(), ("topic",), "contoso-kv"), R.BAD_TOPIC),
    (
        "topic is storage",
        mutated(
            key_event(),
            ("topic",),
            f"/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.Storage/"
            "storageAccounts/contosokv",
        ),
        R.BAD_TOPIC,
    ),
    (
        "topic sub not guid",
        mutated(key_event(), ("topic",), vault_arm_id(sub="{subscription-id}")),
        R.BAD_TOPIC,
    ),
    (
        "topic with child",
        mutated(key_event(), ("topic",), vault_arm_id() + "/keys/x"),
        R.BAD_TOPIC,
    ),
    ("foreign vault", key_event(vault="evil-kv"), R.FOREIGN_VAULT),
    ("vault prefix", key_event(vault="contoso-kv2"), R.FOREIGN_VAULT),
    (
        "vault name differs",
        mutated(key_event(), ("data", "VaultName"), "other-kv"),
        R.VAULT_MISMATCH,
    ),
    ("no vault name", mutated(key_event(), ("data", "VaultName"), ...), R.MISSING_FIELD),
    ("key in other vault", mutated(key_event(), ("data", "Id"), OTHER_KEY_ID), R.VAULT_MISMATCH),
    (
        "key on foreign host",
        mutated(key_event(), ("data", "Id"), f"https://evil-kv.vault.azure.net/keys/{KEY}/{V2}"),
        R.FOREIGN_VAULT,
    ),
    (
        "key on non-azure host",
        mutated(key_event(), ("data", "Id"), f"https://contoso-kv.evil.example/keys/{KEY}/{V2}"),
        R.BAD_KEY_ID,
    ),
    (
        "key over http",
        mutated(key_event(), ("data", "Id"), f"http://contoso-kv.vault.azure.net/keys/{KEY}/{V2}"),
        R.BAD_KEY_ID,
    ),
    (
        "secret id in key event",
        mutated(
            key_event(), ("data", "Id"), f"https://contoso-kv.vault.azure.net/secrets/{KEY}/{V2}"
        ),
        R.BAD_KEY_ID,
    ),
    ("mangled host", mutated(key_event(), ("data", "Id"), "https://[::1/keys/k"), R.BAD_KEY_ID),
    ("no key id", mutated(key_event(), ("data", "Id"), ...), R.MISSING_FIELD),
    ("unversioned new version", key_event(version=None), R.BAD_KEY_ID),
    (
        "object type secret",
        mutated(key_event(), ("data", "ObjectType"), "Secret"),
        R.OBJECT_TYPE_MISMATCH,
    ),
    ("object name differs", mutated(key_event(), ("data", "ObjectName"), "other"), R.NAME_MISMATCH),
    ("no object name", mutated(key_event(), ("data", "ObjectName"), ...), R.MISSING_FIELD),
    ("version differs", mutated(key_event(), ("data", "Version"), "0" * 32), R.VERSION_MISMATCH),
    ("no version", mutated(key_event(), ("data", "Version"), ...), R.MISSING_FIELD),
    (
        "version without versioned id",
        mutated(key_event("Microsoft.KeyVault.KeyExpired", version=None), ("data", "Version"), V2),
        R.VERSION_MISMATCH,
    ),
    ("nbf words", key_event(nbf="soon"), R.BAD_TIMESTAMP),
    ("nbf bool", key_event(nbf=True), R.BAD_TIMESTAMP),
    ("nbf nan", key_event(nbf=float("nan")), R.BAD_TIMESTAMP),
    ("exp huge", key_event(exp=10**30), R.BAD_TIMESTAMP),
    ("exp list", key_event(exp=[1]), R.BAD_TIMESTAMP),
    (
        "ambiguous data names",
        mutated(key_event(), ("data", "id "), f"https://contoso-kv.vault.azure.net/keys/x/{V2}"),
        R.AMBIGUOUS_FIELD,
    ),
    (
        "binary cloud event",
        mutated(key_event(schema="ce"), ("data_base64",), "AA=="),
        R.BAD_FIELD_TYPE,
    ),
]


@pytest.mark.parametrize(("name", "payload", "reason"), CASES, ids=[c[0] for c in CASES])
def test_rejections_name_their_reason(
    name: str, payload: Any, reason: RejectionReason, allow_list: VaultAllowList
) -> None:
    error = rejected(payload, allow_list)
    assert error.reason == reason
    assert isinstance(error, InvalidInputError)
    assert error.detail


def test_rejection_keeps_the_event_id_when_it_could_be_read(allow_list: VaultAllowList) -> None:
    assert rejected(key_event(vault="evil-kv"), allow_list).event_id == EVENT_ID


@pytest.mark.parametrize("schema", ["eventgrid", "cloudevents"])
def test_vault_access_policy_changed(schema: str, allow_list: VaultAllowList) -> None:
    data = {
        "Id": f"https://{VAULT}.vault.azure.net",
        "VaultName": VAULT,
        "ObjectType": "Vault",
        "ObjectName": VAULT,
        "Version": None,
        "NBF": None,
        "EXP": None,
    }
    event = envelope(
        "Microsoft.KeyVault.VaultAccessPolicyChanged", vault_arm_id(), VAULT, data, schema=schema
    )
    parsed = parse_event(event, allow_list)
    assert isinstance(parsed, AccessChangeEvent)
    assert parsed.kind is AccessChangeKind.ACCESS_POLICY_CHANGED
    assert parsed.scope == AccessScope(VAULT)
    assert parse_event(mutated(event, ("data", "Id"), None), allow_list) == parsed
    forged = mutated(event, ("data", "Id"), "https://evil.example")
    assert rejected(forged, allow_list).reason == R.VAULT_MISMATCH
    foreign = mutated(
        event, ("topic" if schema == "eventgrid" else "source",), vault_arm_id("x-kv")
    )
    assert rejected(foreign, allow_list).reason == R.FOREIGN_VAULT


def test_access_policy_change_on_a_vault_listed_by_name_and_dev_origin() -> None:
    both = VaultAllowList.parse(f"{VAULT},{VAULT}=https://127.0.0.1:8443")
    data = {"Id": "https://127.0.0.1:8443/", "VaultName": VAULT}
    event = envelope("Microsoft.KeyVault.VaultAccessPolicyChanged", vault_arm_id(), VAULT, data)
    assert isinstance(parse_event(event, both), AccessChangeEvent)


@pytest.mark.parametrize(
    "event_type",
    [
        "Microsoft.KeyVault.SecretNewVersionCreated",
        "Microsoft.KeyVault.SecretNearExpiry",
        "Microsoft.KeyVault.SecretExpired",
        "Microsoft.KeyVault.CertificateNewVersionCreated",
        "Microsoft.KeyVault.CertificateNearExpiry",
        "Microsoft.KeyVault.CertificateExpired",
    ],
)
def test_secret_and_certificate_events_are_ignored(
    event_type: str, allow_list: VaultAllowList
) -> None:
    parsed = parse_event(key_event(event_type), allow_list)
    assert isinstance(parsed, IgnoredEvent)
    assert parsed.reason


def test_event_type_is_matched_case_insensitively(allow_list: VaultAllowList) -> None:
    parsed = parse_event(key_event("microsoft.keyvault.keyexpired"), allow_list)
    assert isinstance(parsed, KeyVaultEvent)
    assert parsed.event_type == "Microsoft.KeyVault.KeyExpired"


def test_dedup_key_is_type_and_id(allow_list: VaultAllowList) -> None:
    first = parse_event(key_event(), allow_list)
    again = parse_event(key_event(schema="cloudevents"), allow_list)
    assert dedup_key(first) == dedup_key(again)
    expired = parse_event(key_event("Microsoft.KeyVault.KeyExpired"), allow_list)
    assert dedup_key(expired) != dedup_key(first)
