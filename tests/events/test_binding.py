"""Events that went through the real azure.functions converter parse the same as raw JSON."""

from __future__ import annotations

import json
from typing import Any

import pytest
from azure.functions import meta
from azure.functions.eventgrid import EventGridEventInConverter

from shared.crypto import VaultAllowList
from shared.errors import EventRejectedError
from shared.events import RejectionReason, event_dict_from_binding, parse_event
from tests.events.conftest import key_event


def through_converter(body: dict[str, Any]) -> Any:
    datum = meta.Datum(type="json", value=json.dumps(body))
    return EventGridEventInConverter.decode(datum, trigger_metadata={})


@pytest.mark.parametrize("schema", ["eventgrid", "cloudevents"])
def test_converted_event_parses_like_the_raw_body(schema: str, allow_list: VaultAllowList) -> None:
    body = key_event(schema=schema)
    converted = event_dict_from_binding(through_converter(body))
    assert parse_event(converted, allow_list) == parse_event(body, allow_list)


def test_capital_spec_version_loses_its_type_in_the_converter(allow_list: VaultAllowList) -> None:
    body = key_event(schema="cloudevents")
    body["specVersion"] = body.pop("specversion")
    assert parse_event(body, allow_list)  # the raw body is fine
    with pytest.raises(EventRejectedError) as info:
        parse_event(event_dict_from_binding(through_converter(body)), allow_list)
    assert info.value.reason == RejectionReason.MISSING_FIELD
