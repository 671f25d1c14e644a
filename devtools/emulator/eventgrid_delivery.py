"""Event Grid push delivery to webhooks: handshake, at-least-once, retries, dead letters.

What Azure documents and this engine reproduces (``docs/emulator-arm-eventgrid.md``):

* a subscription is validated when created: the Event Grid schema POSTs a
  ``Microsoft.EventGrid.SubscriptionValidationEvent`` and needs ``{"validationResponse": code}``
  back (or a later GET on the ``validationUrl``); the CloudEvents schema sends the CloudEvents
  abuse-protection ``OPTIONS`` with ``WebHook-Request-Origin`` and needs ``WebHook-Allowed-Origin``;
* one event per request by default (an array of one for the Event Grid schema, a single
  structured-mode ``application/cloudevents+json`` event for CloudEvents);
* success is 200-204 within 30 s; 400, 401, 403 and 413 are never retried; anything else is
  retried after 10 s, 30 s, 1 min, 5 min, 10 min, 30 min, 1 h, 3 h, 6 h, then every 12 h,
  until ``maxDeliveryAttempts`` (30) or the event TTL (1440 min); then the event is
  dead-lettered when the subscription has dead-lettering, else dropped;
* no ordering guarantee and possible duplicates: test modes reorder (a seeded random hold
  before the first attempt) and duplicate (a seeded share of successful batches is sent again).

Delays are multiplied by ``time_scale`` so a test can walk the whole schedule in milliseconds;
the TTL is measured on the same scaled clock (the sum of scheduled delays).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import random
import ssl
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import aiohttp

from devtools.emulator.eventgrid_model import (
    NO_RETRY_STATUSES,
    RETRY_EVERY_AFTER_SCHEDULE,
    RETRY_SCHEDULE,
    SCHEMA_CLOUDEVENTS,
    SUCCESS_STATUSES,
    VALIDATION_EVENT_TYPE,
    DeliveryAttempt,
    Event,
    EventSubscription,
    format_time,
    outcome_for,
)

#: The origin Event Grid names in the CloudEvents abuse-protection request.
EVENTGRID_ORIGIN = "eventgrid.azure.net"


class HandshakeFailed(Exception):
    """The webhook did not complete the validation handshake; the subscription is not made."""


@dataclass
class DeliverySettings:
    """Knobs tests turn; defaults are Event Grid's own behaviour."""

    #: Real seconds per Event Grid second for retry delays (1.0 = Azure's schedule).
    time_scale: float = 1.0
    #: Seconds Event Grid waits for a webhook's answer.
    response_timeout: float = 30.0
    #: Relative random spread added to each retry delay (Azure adds "small randomization").
    jitter: float = 0.0
    #: Share (0..1) of successfully delivered batches that are delivered a second time.
    duplicate_rate: float = 0.0
    #: Real seconds: each batch waits a seeded random time in [0, window] before its first
    #: attempt, so batches overtake each other.
    reorder_window: float = 0.0
    seed: int = 0
    #: Extra CA bundles trusted for https webhooks (besides the system store).
    webhook_ca_files: list[str] = field(default_factory=list)

    _FIELDS: ClassVar[dict[str, str]] = {
        "timeScale": "time_scale",
        "responseTimeout": "response_timeout",
        "jitter": "jitter",
        "duplicateRate": "duplicate_rate",
        "reorderWindow": "reorder_window",
        "seed": "seed",
        "webhookCaFiles": "webhook_ca_files",
    }

    def to_json(self) -> dict[str, Any]:
        return {wire: getattr(self, attr) for wire, attr in self._FIELDS.items()}

    def update(self, changes: dict[str, Any]) -> None:
        """Apply the wire-named fields in ``changes``; unknown names raise ``ValueError``."""
        for wire, value in changes.items():
            attr = self._FIELDS.get(wire)
            if attr is None:
                raise ValueError(f"unknown delivery setting {wire!r}")
            setattr(self, attr, value)


@dataclass
class _Batch:
    subscription: EventSubscription
    events: list[Event]
    hold: float
    duplicate: bool


@dataclass
class DeadLetter:
    """An undeliverable event with the fields Azure adds to a dead-letter blob."""

    subscription: str
    event: dict[str, Any]
    reason: str
    delivery_attempts: int
    last_outcome: str
    last_status: int | None
    publish_time: float
    last_attempt_time: float

    def to_json(self) -> dict[str, Any]:
        record = dict(self.event)
        record.update(
            {
                "deadLetterReason": self.reason,
                "deliveryAttempts": self.delivery_attempts,
                "lastDeliveryOutcome": self.last_outcome,
                "lastHttpStatusCode": self.last_status if self.last_status is not None else 0,
                "publishTime": format_time(self.publish_time),
                "lastDeliveryAttemptTime": format_time(self.last_attempt_time),
                "subscription": self.subscription,
            }
        )
        return record


class DeliveryEngine:
    """Subscriptions, the delivery tasks and their records, on the emulator's event loop."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self.settings = DeliverySettings()
        self.subscriptions: dict[str, EventSubscription] = {}
        self.attempts: list[DeliveryAttempt] = []
        self.dead_letters: list[DeadLetter] = []
        self.dropped: list[DeadLetter] = []
        #: Dead-letter blobs written to a subscription's container, and failed writes.
        self.dead_letter_blobs: list[str] = []
        self.blob_errors: list[str] = []
        self._rng = random.Random(0)
        self._buffers: dict[str, list[Event]] = {}
        self._flush_scheduled = False
        self._tasks: set[asyncio.Task[None]] = set()
        self._session: aiohttp.ClientSession | None = None
        self._session_cas: tuple[str, ...] = ()

    # --- configuration ------------------------------------------------------------------------

    def configure(self, changes: dict[str, Any]) -> None:
        self.settings.update(changes)
        if "seed" in changes:
            self._rng = random.Random(self.settings.seed)

    # --- publishing ---------------------------------------------------------------------------

    def enqueue(self, event: Event) -> None:
        """Queue ``event`` for every validated subscription whose filter it passes.

        Batches are cut on the next loop turn, so events published together can share a
        request when a subscription allows ``maxEventsPerBatch`` > 1.
        """
        for subscription in self.subscriptions.values():
            if subscription.provisioning_state == "Succeeded" and subscription.matches(event):
                self._buffers.setdefault(subscription.name, []).append(event)
        if self._buffers:
            self._schedule_flush()

    def _schedule_flush(self) -> None:
        if self._flush_scheduled:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # flushed by ``start`` once the loop runs
        self._flush_scheduled = True
        loop.call_soon(self._flush)

    def start(self) -> None:
        """Deliver anything queued before the loop ran (events published at seeding)."""
        if self._buffers:
            self._schedule_flush()

    def _flush(self) -> None:
        self._flush_scheduled = False
        buffers, self._buffers = self._buffers, {}
        for name, events in buffers.items():
            subscription = self.subscriptions.get(name)
            if subscription is None:
                continue
            size = max(1, subscription.max_events_per_batch)
            for start in range(0, len(events), size):
                hold = (
                    self._rng.uniform(0, self.settings.reorder_window)
                    if self.settings.reorder_window > 0
                    else 0.0
                )
                duplicate = (
                    self.settings.duplicate_rate > 0
                    and self._rng.random() < self.settings.duplicate_rate
                )
                batch = _Batch(subscription, events[start : start + size], hold, duplicate)
                self._spawn(self._deliver(batch))

    def _spawn(self, coroutine: Any) -> None:
        task: asyncio.Task[None] = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    @property
    def pending(self) -> int:
        """Batches still being delivered or waiting for a retry."""
        return len(self._tasks) + sum(len(v) for v in self._buffers.values())

    async def drain(self, timeout: float) -> bool:
        """Wait until nothing is queued or in flight; False if ``timeout`` passed first."""
        deadline = time.monotonic() + timeout
        while self.pending:
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(0.01)
        return True

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._session is not None:
            await self._session.close()
            self._session = None

    # --- HTTP ---------------------------------------------------------------------------------

    def _client(self) -> aiohttp.ClientSession:
        cas = tuple(self.settings.webhook_ca_files)
        if self._session is None or self._session.closed or cas != self._session_cas:
            if self._session is not None and not self._session.closed:
                self._spawn(self._session.close())
            context = ssl.create_default_context()
            for path in cas:
                context.load_verify_locations(cafile=path)
            self._session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=context))
            self._session_cas = cas
        return self._session

    async def _send(
        self, method: str, url: str, headers: dict[str, str], body: bytes | None
    ) -> tuple[int | None, bytes, dict[str, str], str | None, float]:
        """One request with Event Grid's response timeout: (status, body, headers, error, ms)."""
        started = time.monotonic()
        timeout = aiohttp.ClientTimeout(total=self.settings.response_timeout)
        try:
            async with self._client().request(
                method, url, headers=headers, data=body, timeout=timeout, allow_redirects=False
            ) as response:
                payload = await response.read()
                return (
                    response.status,
                    payload,
                    dict(response.headers),
                    None,
                    (time.monotonic() - started) * 1000,
                )
        except TimeoutError:
            return None, b"", {}, "TimedOut", (time.monotonic() - started) * 1000
        except aiohttp.ClientError as error:
            kind = "GenericError"
            if isinstance(error, aiohttp.ClientConnectorError):
                kind = "CannotConnect"
            return None, b"", {}, kind, (time.monotonic() - started) * 1000

    # --- validation handshake -----------------------------------------------------------------

    async def validate(self, subscription: EventSubscription, validation_url: str) -> None:
        """Run the handshake of ``subscription``'s schema and set its provisioning state.

        Raises:
            HandshakeFailed: the endpoint refused, failed or could not be reached.
        """
        if subscription.schema == SCHEMA_CLOUDEVENTS:
            await self._validate_cloudevents(subscription)
        else:
            await self._validate_eventgrid(subscription, validation_url)

    async def _validate_eventgrid(self, subscription: EventSubscription, url: str) -> None:
        now = self._clock()
        event_id = str(uuid.uuid4())
        event: dict[str, Any] = {
            "id": event_id,
            "topic": subscription.topic,
            "subject": "",
            "data": {"validationCode": subscription.validation_code, "validationUrl": url},
            "eventType": VALIDATION_EVENT_TYPE,
            "eventTime": format_time(now),
            "metadataVersion": "1",
            "dataVersion": "1",
        }
        headers = self._headers(subscription, "SubscriptionValidation", 0, "1", "1")
        headers["Content-Type"] = "application/json; charset=utf-8"
        status, body, _, error, ms = await self._send(
            "POST", subscription.endpoint, headers, json.dumps([event]).encode()
        )
        self._record(
            subscription, [event["id"]], 0, now, status, error, ms, "SubscriptionValidation"
        )
        if status not in SUCCESS_STATUSES:
            subscription.provisioning_state = "Failed"
            raise HandshakeFailed(
                f"Webhook validation handshake failed for {subscription.endpoint}. Http POST "
                f"request failed with response code {status if status is not None else error}. "
                "For troubleshooting, visit https://aka.ms/esvalidation."
            )
        answer = _validation_response(body)
        if answer is None:
            # Azure waits for a GET on the validationUrl (manual validation).
            subscription.provisioning_state = "AwaitingManualAction"
            return
        if answer != subscription.validation_code:
            subscription.provisioning_state = "Failed"
            raise HandshakeFailed(
                f"Webhook validation handshake failed for {subscription.endpoint}. The response "
                "did not contain the expected validationResponse. For troubleshooting, visit "
                "https://aka.ms/esvalidation."
            )
        subscription.provisioning_state = "Succeeded"

    async def _validate_cloudevents(self, subscription: EventSubscription) -> None:
        now = self._clock()
        headers = {"WebHook-Request-Origin": EVENTGRID_ORIGIN, "WebHook-Request-Rate": "120"}
        status, _, response_headers, error, ms = await self._send(
            "OPTIONS", subscription.endpoint, headers, None
        )
        self._record(subscription, [], 0, now, status, error, ms, "AbuseProtection")
        allowed = {k.lower(): v for k, v in response_headers.items()}.get(
            "webhook-allowed-origin", ""
        )
        origins = {o.strip() for o in allowed.split(",")}
        if status in SUCCESS_STATUSES and (EVENTGRID_ORIGIN in origins or "*" in origins):
            subscription.provisioning_state = "Succeeded"
            return
        subscription.provisioning_state = "Failed"
        raise HandshakeFailed(
            f"Webhook validation handshake failed for {subscription.endpoint}. Http OPTIONS "
            f"request failed with response code {status if status is not None else error} or "
            "no WebHook-Allowed-Origin header naming eventgrid.azure.net. For troubleshooting, "
            "visit https://aka.ms/esvalidation."
        )

    # --- delivery -----------------------------------------------------------------------------

    @staticmethod
    def _headers(
        subscription: EventSubscription,
        kind: str,
        count: int,
        metadata_version: str,
        data_version: str | None,
    ) -> dict[str, str]:
        headers = {
            "aeg-event-type": kind,
            "aeg-subscription-name": subscription.name.upper(),
            "aeg-delivery-count": str(count),
            "aeg-metadata-version": metadata_version,
        }
        if data_version is not None:
            headers["aeg-data-version"] = data_version
        return headers

    def _request(self, batch: _Batch, count: int) -> tuple[dict[str, str], bytes]:
        subscription = batch.subscription
        rendered = [event.render(subscription.schema) for event in batch.events]
        if subscription.schema == SCHEMA_CLOUDEVENTS:
            headers = self._headers(subscription, "Notification", count, "1.0", None)
            if subscription.max_events_per_batch <= 1:
                headers["Content-Type"] = "application/cloudevents+json; charset=utf-8"
                return headers, json.dumps(rendered[0]).encode()
            headers["Content-Type"] = "application/cloudevents-batch+json; charset=utf-8"
            return headers, json.dumps(rendered).encode()
        headers = self._headers(
            subscription, "Notification", count, "1", batch.events[0].data_version
        )
        headers["Content-Type"] = "application/json; charset=utf-8"
        return headers, json.dumps(rendered).encode()

    def _record(
        self,
        subscription: EventSubscription,
        ids: list[str],
        count: int,
        when: float,
        status: int | None,
        error: str | None,
        ms: float,
        kind: str = "Notification",
        duplicate: bool = False,
    ) -> None:
        self.attempts.append(
            DeliveryAttempt(
                subscription=subscription.name,
                event_ids=ids,
                delivery_count=count,
                time=when,
                status=status,
                outcome=outcome_for(status, error),
                duration_ms=ms,
                kind=kind,
                duplicate=duplicate,
            )
        )

    def _retry_delay(self, attempt: int) -> float:
        base = (
            RETRY_SCHEDULE[attempt] if attempt < len(RETRY_SCHEDULE) else RETRY_EVERY_AFTER_SCHEDULE
        )
        if self.settings.jitter > 0:
            base *= 1 + self._rng.uniform(-self.settings.jitter, self.settings.jitter)
        return base

    async def _deliver(self, batch: _Batch) -> None:
        subscription = batch.subscription
        if batch.hold > 0:
            await asyncio.sleep(batch.hold)
        ids = [event.id for event in batch.events]
        virtual_elapsed = 0.0
        count = 0
        while True:
            if self.subscriptions.get(subscription.name) is not subscription:
                return  # deleted or replaced: Azure stops delivering to it
            headers, body = self._request(batch, count)
            when = self._clock()
            status, _, _, error, ms = await self._send("POST", subscription.endpoint, headers, body)
            self._record(subscription, ids, count, when, status, error, ms)
            count += 1
            if status in SUCCESS_STATUSES:
                if batch.duplicate:
                    headers, body = self._request(batch, count)
                    again = self._clock()
                    status, _, _, error, ms = await self._send(
                        "POST", subscription.endpoint, headers, body
                    )
                    self._record(subscription, ids, count, again, status, error, ms, duplicate=True)
                return
            reason = None
            if status in NO_RETRY_STATUSES:
                reason = "NonRetriableStatusCode"
            elif count >= subscription.max_delivery_attempts:
                reason = "MaxDeliveryAttemptsExceeded"
            else:
                delay = self._retry_delay(count - 1)
                if virtual_elapsed + delay > subscription.event_ttl_minutes * 60:
                    reason = "TimeToLiveExceeded"
            if reason is not None:
                letters = self._give_up(
                    batch, reason, count, outcome_for(status, error), status, when
                )
                if letters and subscription.dead_letter_container:
                    await self._write_dead_letter_blob(subscription, letters, when)
                return
            virtual_elapsed += delay
            await asyncio.sleep(delay * self.settings.time_scale)

    def _give_up(
        self,
        batch: _Batch,
        reason: str,
        attempts: int,
        outcome: str,
        status: int | None,
        when: float,
    ) -> list[DeadLetter]:
        """Record the batch's events as dead-lettered (or dropped); returns the dead letters."""
        subscription = batch.subscription
        target = self.dead_letters if subscription.dead_letter else self.dropped
        letters: list[DeadLetter] = []
        for event in batch.events:
            letters.append(
                DeadLetter(
                    subscription=subscription.name,
                    event=event.render(subscription.schema),
                    reason=reason,
                    delivery_attempts=attempts,
                    last_outcome=outcome,
                    last_status=status,
                    publish_time=event.event_time,
                    last_attempt_time=when,
                )
            )
        target.extend(letters)
        return letters if subscription.dead_letter else []

    async def _write_dead_letter_blob(
        self, subscription: EventSubscription, letters: list[DeadLetter], when: float
    ) -> None:
        """One blob per dead-lettered batch, as Azure writes it: the subscription's name in
        upper case, then UTC year/month/day/hour not zero padded, then a GUID; the content a
        JSON array of the events with the dead-letter properties (docs/emulator.md). A write
        that fails is kept in ``blob_errors`` (the in-memory record stays)."""
        from azure.storage.blob.aio import ContainerClient

        moment = dt.datetime.fromtimestamp(when, dt.UTC)
        name = (
            f"{subscription.name.upper()}/{moment.year}/{moment.month}/{moment.day}/"
            f"{moment.hour}/{uuid.uuid4()}.json"
        )
        records = []
        for letter in letters:
            record = letter.to_json()
            record.pop("subscription", None)  # the emulator's control field, not Azure's
            records.append(record)
        assert subscription.dead_letter_connection
        assert subscription.dead_letter_container
        try:
            async with ContainerClient.from_connection_string(
                subscription.dead_letter_connection, subscription.dead_letter_container
            ) as container:
                with contextlib.suppress(Exception):
                    await container.create_container()
                await container.upload_blob(name, json.dumps(records).encode(), overwrite=True)
            self.dead_letter_blobs.append(name)
        except Exception as error:  # the emulator reports, never crashes its delivery loop
            self.blob_errors.append(f"{name}: {type(error).__name__}: {error}")


def _validation_response(body: bytes) -> str | None:
    try:
        answer = json.loads(body or b"null")
    except ValueError:
        return None
    if not isinstance(answer, dict):
        return None
    for key, value in answer.items():
        if key.lower() == "validationresponse" and isinstance(value, str):
            return value
    return None
