"""The rewrap queue message: ids only, a pinned wire format, strict parsing."""

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
from shared.rewrap import ShardMessage

KEY = "https://kv.vault.azure.net/keys/orders"
MESSAGE = ShardMessage("rw-0123456789abcdef", KEY, "a" * 32, "table:keywarddeks", 2)


def test_wire_format_is_pinned() -> None:
    assert MESSAGE.to_json() == (
        '{"job":"rw-0123456789abcdef","key":"https://kv.vault.azure.net/keys/orders",'
        '"shard":"table:keywarddeks","slice":2,"target":"' + "a" * 32 + '","v":1}'
    )
    assert ShardMessage.from_json(MESSAGE.to_json()) == MESSAGE


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
