"""An event redelivered across midnight is still a duplicate: KeyEventService over the real
event ledger (dated partitions) on Azurite, with its clock at 23:59 and then 00:01."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from azure.data.tables.aio import TableClient

from shared.adapters.event_ledger import EventLedger
from shared.crypto import VaultAllowList
from shared.services._planner import RewrapPlanner
from shared.services.key_events import DUPLICATE, HANDLED, KeyEventService
from tests.services.test_key_events import V1, V2, VAULT, Queue, _keys, _rotation

pytestmark = pytest.mark.azurite


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


async def test_a_redelivery_after_midnight_plans_nothing_twice(table: TableClient) -> None:
    clock = Clock(datetime(2026, 12, 6, 23, 59, tzinfo=UTC))
    queue = Queue()
    service = KeyEventService(
        allow_list=VaultAllowList.parse(VAULT),
        ledger=EventLedger(table, now=clock),
        planner=RewrapPlanner(_keys(V1, V2), queue, ["table:keywarddeks"]),
        follow_ups=queue,
        now=clock,
    )
    first = await service.handle(_rotation(V2, event_id="ev-midnight"))
    assert first.status == HANDLED
    assert len(queue.sent) == 1

    clock.now += timedelta(minutes=2)  # 00:01 the next day: a new day partition
    again = await service.handle(_rotation(V2, event_id="ev-midnight"))
    assert again.status == DUPLICATE
    assert len(queue.sent) == 1, "nothing planned twice"
    assert len(queue.follow_ups) == 1

    other = await service.handle(_rotation(V2, event_id="ev-other"))
    assert other.status == HANDLED
