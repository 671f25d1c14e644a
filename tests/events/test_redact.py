"""Rejected-event records keep what helps an operator and nothing personal or oversized."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from shared.crypto import VaultAllowList
from shared.errors import EventRejectedError
from shared.events import (
    MAX_RECORD_PAYLOAD_CHARS,
    RejectionReason,
    parse_event,
    redact_payload,
    rejected_event_record,
)
from tests.events.conftest import EVENT_ID, key_event, resource_event, vault_arm_id

NOW = datetime(2026, 11, 29, 3, 0, tzinfo=UTC)


def record_for(payload: Any, allow_list: VaultAllowList) -> Any:
    with pytest.raises(EventRejectedError) as info:
        parse_event(payload, allow_list)
    return rejected_event_record(payload, info.value, NOW)


def test_record_of_a_foreign_vault_event(allow_list: VaultAllowList) -> None:
    payload = key_event(vault="evil-kv")
    record = record_for(payload, allow_list)
    assert record.reason == RejectionReason.FOREIGN_VAULT
    assert record.event_id == EVENT_ID
    assert record.received_at == NOW
    kept = json.loads(record.payload)
    assert kept["data"]["VaultName"] == "evil-kv"
    assert kept["topic"] == payload["topic"]
    assert not record.payload_truncated
    assert len(record.payload_sha256) == 64


def test_claims_and_http_request_are_not_kept(allow_list: VaultAllowList) -> None:
    payload = resource_event(vault_arm_id(), topic="/subscriptions/not-a-guid")
    record = record_for(payload, allow_list)
    assert record.reason == RejectionReason.BAD_TOPIC
    assert "someone@contoso.example" not in record.payload
    assert "203.0.113.7" not in record.payload
    kept = json.loads(record.payload)
    assert kept["data"]["claims"] == "<redacted dict>"
    assert kept["data"]["resourceUri"] == vault_arm_id()


def test_unknown_fields_are_named_but_not_kept() -> None:
    payload = key_event()
    payload["data"]["Blob"] = "x" * 100_000
    payload["extra"] = {"nested": "secret-looking"}
    redacted = redact_payload(payload)
    assert isinstance(redacted, dict)
    assert redacted["extra"] == "<redacted dict>"
    assert redacted["data"]["Blob"] == "<redacted str>"


def test_long_known_values_are_capped_and_record_is_bounded(allow_list: VaultAllowList) -> None:
    payload = key_event()
    payload["subject"] = "s" * 100_000
    for i in range(200):
        payload[f"field{i}"] = i
    payload["eventType"] = "Contoso.Unknown"
    record = record_for(payload, allow_list)
    assert len(record.payload) <= MAX_RECORD_PAYLOAD_CHARS
    kept = json.loads(record.payload)
    assert len(kept["subject"]) < 600
    assert "more fields dropped" in kept["..."]


def test_unparseable_text_keeps_only_length_and_digest(allow_list: VaultAllowList) -> None:
    payload = "password=hunter2 {"
    record = record_for(payload, allow_list)
    assert record.reason == RejectionReason.MALFORMED_JSON
    assert "hunter2" not in record.payload
    assert json.loads(record.payload) == {"unparsed": True, "length": len(payload)}
    assert record.event_id is None


def test_non_object_payload(allow_list: VaultAllowList) -> None:
    record = record_for([1, 2], allow_list)
    assert json.loads(record.payload) == {"not_an_object": "list"}


def test_non_finite_and_huge_numbers_still_serialise() -> None:
    payload = key_event(nbf=float("inf"), exp=10**5000)
    text = json.dumps(redact_payload(payload))
    assert "Infinity" not in text.replace('"inf"', "")
