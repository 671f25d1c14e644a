"""keyward's queue messages: ids only, pinned wire formats, strict parsing, derived job ids."""

from __future__ import annotations

import base64
import uuid
from typing import Any

import pytest
from azure.storage.queue.aio import QueueClient
from hypothesis import given, settings
from hypothesis import strategies as st

from devtools.azurite import AzuriteInfo
from shared.adapters.queues import RewrapQueue
from shared.errors import InvalidInputError
from shared.events import AccessScope, DependentsFollowUp, FollowUpRotation, RotateKey
from shared.rewrap import JobIdMismatchError, ShardMessage, queue_message_kind, rewrap_job_id

KEY = "https://kv.vault.azure.net/keys/orders"
JOB = rewrap_job_id(KEY, "a" * 32, "table:keywarddeks")
MESSAGE = ShardMessage(JOB, KEY, "a" * 32, "table:keywarddeks", 2)
FOLLOW_UP = DependentsFollowUp(
    "Microsoft.KeyVault.KeyNewVersionCreated|ev-1",
    "ev-1",
    (FollowUpRotation(KEY, "a" * 32),),
    (AccessScope("kv", "orders"), AccessScope("kv", None)),
    RotateKey(KEY, "a" * 32),
)


def test_wire_format_is_pinned() -> None:
    assert JOB.startswith("rewrap-")
    assert MESSAGE.to_json() == (
        '{"job":"' + JOB + '","key":"https://kv.vault.azure.net/keys/orders",'
        '"kind":"rewrap","shard":"table:keywarddeks","slice":2,"target":"' + "a" * 32 + '","v":1}'
    )
    assert ShardMessage.from_json(MESSAGE.to_json()) == MESSAGE
    assert queue_message_kind(MESSAGE.to_json()) == "rewrap"


def test_a_message_of_the_first_version_without_kind_is_still_a_shard() -> None:
    text = MESSAGE.to_json().replace('"kind":"rewrap",', "")
    assert queue_message_kind(text) == "rewrap"
    assert ShardMessage.from_json(text) == MESSAGE


def test_the_job_id_is_derived_and_a_claimed_other_id_is_refused() -> None:
    assert ShardMessage.for_shard(KEY, "a" * 32, "table:keywarddeks", 2) == MESSAGE
    other_job = rewrap_job_id("https://kv.vault.azure.net/keys/payroll", "b" * 32, "table:x1x")
    forged = MESSAGE.to_json().replace(JOB, other_job)
    with pytest.raises(JobIdMismatchError) as refused:
        ShardMessage.from_json(forged)
    assert (refused.value.claimed, refused.value.derived) == (other_job, JOB)
    with pytest.raises(JobIdMismatchError):
        ShardMessage(other_job, KEY, "a" * 32, "table:keywarddeks")


def test_follow_up_wire_format_is_pinned_and_round_trips() -> None:
    assert FOLLOW_UP.to_json() == (
        '{"event":"Microsoft.KeyVault.KeyNewVersionCreated|ev-1","event_id":"ev-1",'
        '"kind":"dependents","rotate":{"if_current":"' + "a" * 32 + '","key":"' + KEY + '"},'
        '"rotations":[{"key":"' + KEY + '","version":"' + "a" * 32 + '"}],'
        '"scopes":[{"key":"orders","vault":"kv"},{"key":null,"vault":"kv"}],"v":1}'
    )
    assert DependentsFollowUp.from_json(FOLLOW_UP.to_json()) == FOLLOW_UP
    assert queue_message_kind(FOLLOW_UP.to_json()) == "dependents"
    assert FOLLOW_UP.dedup_key == "dependents|Microsoft.KeyVault.KeyNewVersionCreated|ev-1"
    with pytest.raises(InvalidInputError):
        ShardMessage.from_json(FOLLOW_UP.to_json())  # one kind's parser refuses the other
    with pytest.raises(InvalidInputError):
        DependentsFollowUp.from_json(MESSAGE.to_json())


@pytest.mark.parametrize(
    "change",
    [
        ('"v":1', '"v":2'),
        ('"kind":"dependents"', '"kind":"rewrap"'),
        ('"event_id":"ev-1"', '"event_id":7'),
        ('"vault":"kv"}]', '"vault":"k v"}]'),
        ('"version":"' + "a" * 32, '"version":"' + "A" * 32),
        ("https://kv.vault", "http://kv.vault"),
        ('"rotations":[', '"rotations":[5,'),
        ('"rotate":{', '"rotate":[{'),
    ],
)
def test_malformed_follow_ups_are_refused(change: tuple[str, str]) -> None:
    with pytest.raises(InvalidInputError):
        DependentsFollowUp.from_json(FOLLOW_UP.to_json().replace(*change, 1))


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(max_size=300), st.dictionaries(st.text(max_size=8), st.integers())))
def test_arbitrary_follow_up_input_never_escapes_as_another_error(value: Any) -> None:
    text = value if isinstance(value, str) else str(value)
    queue_message_kind(text)
    try:
        DependentsFollowUp.from_json(text)
    except InvalidInputError:
        pass


def test_continuation_is_the_same_shard_one_slice_later() -> None:
    following = MESSAGE.next_slice()
    assert (following.job_id, following.shard, following.slice_number) == (
        MESSAGE.job_id, MESSAGE.shard, 3,
    )  # fmt: skip


@pytest.mark.parametrize(
    "text",
    [
        "not json",
        "[]",
        '{"v":2,"job":"j","key":"https://kv.vault.azure.net/keys/k","target":"'
        + "a" * 32
        + '","shard":"table:t1t"}',
        '{"v":1,"key":"https://kv.vault.azure.net/keys/k","target":"'
        + "a" * 32
        + '","shard":"table:tab"}',
        '{"v":1,"job":"j","key":"http://kv/keys/k","target":"'
        + "a" * 32
        + '","shard":"table:tab"}',
        '{"v":1,"job":"j","key":"https://kv.vault.azure.net/keys/k","target":"XYZ","shard":"table:tab"}',
        '{"v":1,"job":"j","key":"https://kv.vault.azure.net/keys/k","target":"'
        + "a" * 32
        + '","shard":"S3:tab"}',
        '{"v":1,"job":"j","key":"https://kv.vault.azure.net/keys/k","target":"'
        + "a" * 32
        + '","shard":"tab"}',
        '{"v":1,"job":"j","key":"https://kv.vault.azure.net/keys/k","target":"'
        + "a" * 32
        + '","shard":"table:tab","slice":true}',
        '{"v":1,"job":5,"key":"https://kv.vault.azure.net/keys/k","target":"'
        + "a" * 32
        + '","shard":"table:tab"}',
        '{"v":1,"kind":"dependents","job":"j","key":"https://kv.vault.azure.net/keys/k",'
        '"target":"' + "a" * 32 + '","shard":"table:tab"}',
    ],
)
def test_malformed_messages_are_refused(text: str) -> None:
    with pytest.raises(InvalidInputError):
        ShardMessage.from_json(text)


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(max_size=300), st.dictionaries(st.text(max_size=8), st.integers())))
def test_arbitrary_input_never_escapes_as_another_error(value: Any) -> None:
    text = value if isinstance(value, str) else str(value)
    try:
        ShardMessage.from_json(text)
    except InvalidInputError:
        pass


@pytest.mark.azurite
async def test_queue_messages_are_base64_as_the_functions_host_expects(
    azurite: AzuriteInfo,
) -> None:
    name = "rw" + uuid.uuid4().hex[:10]
    queue = RewrapQueue.from_connection_string(azurite.connection_string, name)
    await queue.ensure_exists()
    await queue.ensure_exists()  # idempotent
    await queue.send(MESSAGE)
    async with QueueClient.from_connection_string(azurite.connection_string, name) as raw:
        received = [m async for m in raw.receive_messages(max_messages=1)]
    await queue.close()
    (message,) = received
    assert ShardMessage.from_json(base64.b64decode(message.content).decode()) == MESSAGE
