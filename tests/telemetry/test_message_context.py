"""Queue messages carry the sender's W3C ``traceparent``: optional (old messages parse), never
part of a message's identity, a malformed one ignored rather than fatal."""

from __future__ import annotations

import json
import typing

import azure.functions as func
import pytest

from devtools.localhost import bindings
from shared.errors import InvalidInputError
from shared.rewrap import OperationMessage, ShardMessage, peek_message, with_traceparent
from tests.conftest import indexed_functions

PARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
KEY = "https://contoso-kv.vault.azure.net/keys/orders"
VERSION = "a" * 32


def test_a_shard_message_round_trips_its_traceparent() -> None:
    message = ShardMessage.for_shard(KEY, VERSION, "table:deks")
    stamped = ShardMessage(message.job_id, KEY, VERSION, "table:deks", 2, traceparent=PARENT)
    parsed = ShardMessage.from_json(stamped.to_json())
    assert parsed.traceparent == PARENT
    assert parsed == message.next_slice().next_slice(), "the context is not its identity"
    assert parsed.next_slice().traceparent is None, "the next slice gets its sender's"


def test_a_message_written_before_traceparent_existed_still_parses() -> None:
    old = ShardMessage.for_shard(KEY, VERSION, "table:deks").to_json()
    assert "traceparent" not in old
    assert ShardMessage.from_json(old).traceparent is None
    assert OperationMessage.from_json(OperationMessage("b" * 32).to_json()).traceparent is None


def test_a_malformed_traceparent_is_ignored_by_the_parser_and_refused_by_the_constructor() -> None:
    body = json.loads(ShardMessage.for_shard(KEY, VERSION, "table:deks").to_json())
    body["traceparent"] = "00-not-a-context"
    assert ShardMessage.from_json(json.dumps(body)).traceparent is None
    with pytest.raises(InvalidInputError):
        ShardMessage(body["job"], KEY, VERSION, "table:deks", traceparent="junk")
    with pytest.raises(InvalidInputError):
        OperationMessage("b" * 32, traceparent="junk")


def test_an_operation_message_round_trips_its_traceparent() -> None:
    message = OperationMessage("b" * 32, 1, traceparent=PARENT)
    parsed = OperationMessage.from_json(message.to_json())
    assert parsed.traceparent == PARENT
    assert parsed == OperationMessage("b" * 32, 1)


def test_a_peek_names_kind_ids_and_context_and_never_raises() -> None:
    shard = ShardMessage.for_shard(KEY, VERSION, "table:deks")
    body = json.dumps({**json.loads(shard.to_json()), "traceparent": PARENT})
    peek = peek_message(body)
    assert (peek.kind, peek.job_id, peek.traceparent, peek.slice_number) == (
        "rewrap",
        shard.job_id,
        PARENT,
        0,
    )
    operation = peek_message(OperationMessage("c" * 32, 3).to_json())
    assert (operation.kind, operation.operation_id, operation.slice_number) == (
        "operation",
        "c" * 32,
        3,
    )
    for junk in ("", "[]", "{", "x" * 10_000, json.dumps({"job": "a b<script>"})):
        peeked = peek_message(junk)
        assert peeked.job_id is None
        assert peeked.traceparent is None


def test_a_follow_up_body_gets_the_traceparent_and_other_text_is_left_alone() -> None:
    assert json.loads(with_traceparent('{"kind":"dependents"}', PARENT)) == {
        "kind": "dependents",
        "traceparent": PARENT,
    }
    assert with_traceparent('{"kind":"dependents"}', None) == '{"kind":"dependents"}'
    assert with_traceparent("[1]", PARENT) == "[1]"
    assert with_traceparent("nope", PARENT) == "nope"


def test_every_trigger_declaring_context_annotates_it_as_the_worker_requires() -> None:
    """The Python worker refuses to load a function whose ``context`` annotation is not a
    type named ``Context`` (azure-functions-python-worker ``functions.py``)."""
    declaring = []
    for name, function in indexed_functions().items():
        user = function.get_user_function()
        hints = typing.get_type_hints(user)
        if "context" in hints:
            assert hints["context"] is func.Context, name
            declaring.append(name)
    assert {"on_key_vault_event", "rewrap_worker", "sweep", "dependents_sweep"} <= set(declaring)


def test_the_local_host_gives_each_invocation_a_trace_context_in_the_request_trace() -> None:
    context = bindings.invocation_context("sweep", PARENT)
    assert isinstance(context, func.Context)
    parent = context.trace_context.trace_parent
    assert parent.split("-")[1] == PARENT.split("-")[1]
    assert parent.split("-")[2] != PARENT.split("-")[2]
    fresh = bindings.invocation_context("sweep").trace_context.trace_parent
    assert fresh.split("-")[1] != PARENT.split("-")[1]
    assert context.invocation_id != bindings.invocation_context("sweep").invocation_id
