"""Fuzzing parse_event: no unhandled exception, and nothing invalid ever gets through.

Three properties, 2,000 examples each:

* arbitrary JSON-ish payloads (dicts, lists, text, bytes, numbers, NaN) either parse or raise
  ``EventRejectedError``, and a rejected payload always yields a bounded record;
* a valid event with one *breaking* change to a field that carries identity (the event's id,
  type, topic, VaultName, Id, ObjectName, Version, ObjectType) is always rejected;
* a valid event with *harmless* changes (name case, whitespace, dropped optional fields)
  still parses to the same event; and every ``KeyVaultEvent`` that comes out of any input
  satisfies the invariants the rest of keyward relies on.
"""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.crypto import VaultAllowList
from shared.errors import EventRejectedError
from shared.events import (
    MAX_RECORD_PAYLOAD_CHARS,
    AccessChangeEvent,
    IgnoredEvent,
    KeyEventKind,
    KeyVaultEvent,
    ParsedEvent,
    parse_event,
    rejected_event_record,
    route,
)
from tests.events.conftest import KEY, V1, V2, VAULT, key_event, vault_arm_id

ALLOW = VaultAllowList.parse(f"{VAULT},other-kv,emu=https://127.0.0.1:8443")
NOW = datetime(2026, 11, 29, tzinfo=UTC)
FUZZ = settings(max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow])

scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=40)
)
json_ish = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=12), inner, max_size=6)
    ),
    max_leaves=25,
)
interesting_text = st.sampled_from(
    [
        "",
        " ",
        VAULT,
        "other-kv",
        "evil-kv",
        KEY,
        V1,
        V2,
        "Key",
        "Secret",
        "1.0",
        "0.3",
        vault_arm_id(),
        vault_arm_id("other-kv"),
        vault_arm_id("evil-kv"),
        f"https://{VAULT}.vault.azure.net/keys/{KEY}/{V2}",
        f"https://other-kv.vault.azure.net/keys/{KEY}/{V2}",
        f"https://{VAULT}.vault.azure.net/keys/{KEY}",
        f"https://127.0.0.1:8443/keys/{KEY}/{V2}",
        "Microsoft.KeyVault.KeyNewVersionCreated",
        "Microsoft.KeyVault.SecretNewVersionCreated",
        "Microsoft.Resources.ResourceWriteSuccess",
        "https://[::1/keys/x",
        "\x00",
    ]
)
values = json_ish | interesting_text
schemas = st.sampled_from(["eventgrid", "cloudevents"])
KEY_TYPES = {
    "Microsoft.KeyVault.KeyNewVersionCreated",
    "Microsoft.KeyVault.KeyNearExpiry",
    "Microsoft.KeyVault.KeyExpired",
}
event_types = st.sampled_from(sorted(KEY_TYPES))


def outcome(payload: Any) -> ParsedEvent | EventRejectedError:
    try:
        result = parse_event(payload, ALLOW)
    except EventRejectedError as exc:
        record = rejected_event_record(payload, exc, NOW)
        assert len(record.payload) <= MAX_RECORD_PAYLOAD_CHARS
        json.dumps(record.payload)
        return exc
    assert isinstance(result, KeyVaultEvent | AccessChangeEvent | IgnoredEvent)
    check_invariants(result)
    route(result, auto_rotate_near_expiry=True)
    return result


def check_invariants(event: ParsedEvent) -> None:
    if isinstance(event, KeyVaultEvent):
        assert ALLOW.allows_name(event.vault_name)
        assert event.key_id.vault_name == event.vault_name
        assert ALLOW.check_key_id(event.key_id.id, require_version=False) == event.key_id
        assert event.version == event.key_id.version
        if event.kind is KeyEventKind.NEW_VERSION:
            assert event.version is not None
    elif isinstance(event, AccessChangeEvent) and event.scope.vault_name is not None:
        assert ALLOW.allows_name(event.scope.vault_name)


@FUZZ
@given(
    payload=values | values.map(lambda v: json.dumps(v, allow_nan=True)) | st.binary(max_size=64)
)
def test_arbitrary_payloads_parse_or_are_rejected(payload: Any) -> None:
    outcome(payload)


TOP_CRITICAL = {
    "eventgrid": ["id", "eventType", "topic", "data"],
    "cloudevents": ["id", "type", "source", "data", "specversion"],
}
DATA_CRITICAL = ["Id", "VaultName", "ObjectName", "Version", "ObjectType"]


@st.composite
def broken_events(draw: st.DrawFn) -> dict[str, Any]:
    schema = draw(schemas)
    event_type = draw(event_types)
    event = key_event(event_type, schema=schema)
    in_data = draw(st.booleans())
    name = draw(st.sampled_from(DATA_CRITICAL if in_data else TOP_CRITICAL[schema]))
    target = event["data"] if in_data else event
    original = target[name]
    # ObjectType is optional (the Id's /keys/ path already says "key"), and so is Version
    # when a versioned Id already carries it, except for a new version.
    optional = name == "ObjectType" or (name == "Version" and not event_type.endswith("Created"))
    if not optional and draw(st.booleans()):
        del target[name]
    else:
        # Any printable text is a valid event id, so only a non-text id is a broken one.
        pool = json_ish.filter(lambda v: not isinstance(v, str)) if name == "id" else values
        replacement = draw(
            pool.filter(
                lambda v: (
                    not (isinstance(v, str) and v.strip().lower() == str(original).lower())
                    and v is not None
                    and v != ""
                    # blank counts as absent, which an optional field may be
                    and not (optional and isinstance(v, str) and not v.strip())
                    # another key event type makes another valid event, not a broken one
                    and not (name in ("type", "eventType") and str(v).strip() in KEY_TYPES)
                )
            )
        )
        target[name] = replacement
    return event


@FUZZ
@given(event=broken_events())
def test_a_broken_identity_field_is_always_rejected(event: dict[str, Any]) -> None:
    result = outcome(event)
    # Rejected, or (a type swapped for a secret/certificate type) ignored: never actionable.
    assert isinstance(result, EventRejectedError | IgnoredEvent), result


def _shuffle_case(draw: st.DrawFn, name: str) -> str:
    flips = draw(st.lists(st.booleans(), min_size=len(name), max_size=len(name)))
    cased = "".join(c.upper() if f else c.lower() for c, f in zip(name, flips, strict=True))
    pad = draw(st.sampled_from(["", " ", "  ", "\t"]))
    return pad + cased + draw(st.sampled_from(["", " "]))


@st.composite
def harmless_variants(draw: st.DrawFn) -> tuple[dict[str, Any], dict[str, Any]]:
    schema = draw(schemas)
    original = key_event(draw(event_types), schema=schema)
    variant = copy.deepcopy(original)
    data = variant.pop("data")
    new_data: dict[str, Any] = {}
    for name, value in data.items():
        if name in ("NBF", "EXP") and draw(st.booleans()):
            continue  # optional: dropping them only loses information
        if isinstance(value, str) and name != "Id":
            value = draw(st.sampled_from(["", " "])) + value + draw(st.sampled_from(["", " "]))
        new_data[_shuffle_case(draw, name)] = value
    variant["data"] = new_data
    if schema == "cloudevents" and draw(st.booleans()):
        variant["specVersion"] = variant.pop("specversion")
    return original, variant


@FUZZ
@given(pair=harmless_variants())
def test_harmless_changes_parse_to_the_same_event(
    pair: tuple[dict[str, Any], dict[str, Any]],
) -> None:
    original, variant = pair
    expected = parse_event(original, ALLOW)
    result = outcome(variant)
    assert isinstance(result, KeyVaultEvent), result
    assert isinstance(expected, KeyVaultEvent)
    assert (result.key_id, result.kind, result.vault_name) == (
        expected.key_id,
        expected.kind,
        expected.vault_name,
    )


def _seeds() -> list[dict[str, Any]]:
    from tests.events.conftest import envelope, resource_event

    role = "/providers/Microsoft.Authorization/roleAssignments/6b1e4d1f-0000-4000-8000-0000000000a1"
    policy = {"Id": f"https://{VAULT}.vault.azure.net/", "VaultName": VAULT, "ObjectType": "Vault"}
    return [
        key_event(),
        key_event("Microsoft.KeyVault.KeyNearExpiry", schema="cloudevents"),
        key_event("Microsoft.KeyVault.SecretExpired"),
        envelope("Microsoft.KeyVault.VaultAccessPolicyChanged", vault_arm_id(), VAULT, policy),
        resource_event(vault_arm_id() + "/keys/" + KEY + role),
        resource_event(vault_arm_id(), deleted=True, schema="cloudevents"),
    ]


@st.composite
def mutated_anything(draw: st.DrawFn) -> dict[str, Any]:
    event = copy.deepcopy(draw(st.sampled_from(_seeds())))
    for _ in range(draw(st.integers(1, 3))):
        target = event if draw(st.booleans()) else event.get("data")
        if not isinstance(target, dict) or not target:
            break
        name = draw(st.sampled_from(sorted(target)))
        if draw(st.booleans()):
            del target[name]
        else:
            target[name] = draw(values)
    return event


@FUZZ
@given(event=mutated_anything())
def test_any_mutation_of_any_event_kind_is_handled(event: dict[str, Any]) -> None:
    outcome(event)
