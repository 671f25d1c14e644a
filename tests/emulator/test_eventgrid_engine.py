"""The delivery engine on its own: batching and the seeded reorder mode.

These need events published in one loop turn and a look at the engine's seeded draws, which
the running emulator does not expose; the engine is driven directly, against a real webhook.
"""

from __future__ import annotations

import itertools
import random
import time

from azure.core.messaging import CloudEvent

from devtools.emulator.eventgrid_delivery import DeliveryEngine
from devtools.emulator.eventgrid_model import (
    SCHEMA_CLOUDEVENTS,
    Event,
    EventSubscription,
    format_time,
)
from devtools.emulator.eventgrid_webhook import RecordingWebhook

TOPIC = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/kv"
KEY_EVENT = "Microsoft.KeyVault.KeyNewVersionCreated"


def _event(subject: str) -> Event:
    return Event(TOPIC, KEY_EVENT, subject, {"ObjectName": subject}, time.time())


async def _subscribed(engine: DeliveryEngine, subscription: EventSubscription) -> None:
    await engine.validate(subscription, "https://127.0.0.1/validate")
    engine.subscriptions[subscription.name] = subscription


async def test_events_published_together_share_a_cloudevents_batch() -> None:
    engine = DeliveryEngine(time.time)
    with RecordingWebhook() as hook:
        subscription = EventSubscription(
            name="batch",
            topic=TOPIC,
            endpoint=hook.url,
            schema=SCHEMA_CLOUDEVENTS,
            max_events_per_batch=2,
        )
        await _subscribed(engine, subscription)
        for subject in ("k0", "k1", "k2"):
            engine.enqueue(_event(subject))
        assert await engine.drain(5.0)
        first, second = hook.notifications()
    await engine.close()
    assert first.headers["Content-Type"] == "application/cloudevents-batch+json; charset=utf-8"
    batches = sorted([[CloudEvent.from_dict(e).subject for e in r.json] for r in (first, second)])
    assert batches == [["k0", "k1"], ["k2"]]


def _seed_with_clear_gaps(count: int, window: float, gap: float) -> tuple[int, list[float]]:
    """A seed whose reorder holds are at least ``gap`` apart (so arrival order is certain)."""
    for seed in range(1000):
        rng = random.Random(seed)
        holds = [rng.uniform(0, window) for _ in range(count)]
        ordered = sorted(holds)
        if min(b - a for a, b in itertools.pairwise(ordered)) >= gap:
            return seed, holds
    raise AssertionError("no seed found")


async def test_reorder_mode_follows_the_seeded_holds() -> None:
    seed, holds = _seed_with_clear_gaps(6, 1.2, 0.1)
    engine = DeliveryEngine(time.time)
    engine.configure({"reorderWindow": 1.2, "seed": seed})
    subjects = [f"k{i}" for i in range(6)]
    with RecordingWebhook() as hook:
        await _subscribed(engine, EventSubscription(name="r", topic=TOPIC, endpoint=hook.url))
        for subject in subjects:
            engine.enqueue(_event(subject))
        assert await engine.drain(5.0)
        arrived = [r.json[0]["subject"] for r in hook.notifications()]
    await engine.close()
    expected = [s for _, s in sorted(zip(holds, subjects, strict=True))]
    assert arrived == expected
    assert arrived != subjects


async def test_deleted_subscription_gets_no_more_retries() -> None:
    engine = DeliveryEngine(time.time)
    engine.configure({"timeScale": 0.01})
    with RecordingWebhook(statuses=[500] * 5) as hook:
        await _subscribed(engine, EventSubscription(name="gone", topic=TOPIC, endpoint=hook.url))
        engine.enqueue(_event("k"))
        while not hook.notifications():
            await engine.drain(0.01)
        del engine.subscriptions["gone"]
        assert await engine.drain(5.0)
        assert len(hook.notifications()) == 1
    await engine.close()


def test_times_have_seven_fractional_digits() -> None:
    assert format_time(0.5) == "1970-01-01T00:00:00.5000000Z"
