"""Event Grid of the emulator: system-topic delivery to webhooks, a custom-topic sink, control.

The server calls :func:`attach` once at start and stores the returned publisher in
``state.events``; the Key Vault data plane and the ARM surface then call
``state.events.publish(topic, event_type, subject, data)`` and never see webhooks.

Control routes (JSON; see ``docs/emulator-arm-eventgrid.md`` and ``eventgrid_client.py``)::

    PUT    /control/eventgrid/subscriptions/{name}   create/replace (runs the handshake)
    GET    /control/eventgrid/subscriptions[/{name}]
    DELETE /control/eventgrid/subscriptions/{name}
    GET    /control/eventgrid/events                 every event published (Event Grid schema)
    GET    /control/eventgrid/deliveries             every attempt (status, time, outcome)
    GET    /control/eventgrid/deadletters            dead-lettered (and ?dropped=true dropped)
    GET|PUT /control/eventgrid/settings              time scale, timeout, duplicate, reorder
    POST   /control/eventgrid/drain                  wait until no delivery is pending
    POST   /control/eventgrid/reset                  forget events, attempts, dead letters
    PUT    /control/eventgrid/topics/{name}          custom topic (keys, input schema)
    GET    /control/eventgrid/topics[/{name}]
    GET|DELETE /control/eventgrid/topics/{name}/events   what was published to it

Plus ``GET /eventgrid/subscriptions/{name}/validate?code=...`` (the ``validationUrl`` of the
manual handshake) and ``POST /eventgrid/topics/{name}/api/events`` (the sink).
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from devtools.emulator.eventgrid_delivery import DeliveryEngine, HandshakeFailed
from devtools.emulator.eventgrid_model import (
    SCHEMA_CLOUDEVENTS,
    SCHEMAS,
    Event,
    EventSubscription,
)
from devtools.emulator.eventgrid_sink import CustomTopic, Sink
from devtools.emulator.state import EmulatorState, EventPublisher

#: ``data`` schema version per event-type family (the samples: Key Vault "1", Resources "2").
_DATA_VERSIONS = {"microsoft.resources.": "2"}
#: Keep at most this many published events for the control API.
_EVENT_LOG_LIMIT = 10000


class EventGrid:
    """The emulator's Event Grid: satisfies ``state.EventPublisher``."""

    def __init__(self, state: EmulatorState) -> None:
        self.state = state
        self.engine = DeliveryEngine(state.clock.now)
        self.sink = Sink(state, self.engine)
        self.published: list[Event] = []

    def publish(self, topic: str, event_type: str, subject: str, data: dict[str, Any]) -> None:
        """Record one event on ``topic`` and queue it for every matching subscription."""
        version = next(
            (v for prefix, v in _DATA_VERSIONS.items() if event_type.lower().startswith(prefix)),
            "1",
        )
        event = Event(
            topic=topic,
            event_type=event_type,
            subject=subject,
            data=data,
            event_time=self.state.clock.now(),
            data_version=version,
        )
        self.published.append(event)
        del self.published[:-_EVENT_LOG_LIMIT]
        self.engine.enqueue(event)


def attach(app: web.Application, state: EmulatorState) -> EventPublisher:
    """Add Event Grid routes (control, validation URL, custom-topic sink) to ``app``.

    Returns the publisher the server stores in ``state.events``; its delivery tasks start with
    the app and are cancelled at cleanup.
    """
    grid = EventGrid(state)
    _Routes(grid).register(app)
    grid.sink.register(app)

    async def _start(_: web.Application) -> None:
        grid.engine.start()

    async def _stop(_: web.Application) -> None:
        await grid.engine.close()

    app.on_startup.append(_start)
    app.on_cleanup.append(_stop)
    return grid


def _error(status: int, code: str, message: str) -> web.Response:
    return web.json_response({"error": {"code": code, "message": message}}, status=status)


async def _body(request: web.Request) -> dict[str, Any]:
    if not request.can_read_body:
        return {}
    try:
        body = await request.json()
    except json.JSONDecodeError as error:
        raise web.HTTPBadRequest(
            text=json.dumps({"error": {"code": "BadRequest", "message": str(error)}}),
            content_type="application/json",
        ) from error
    if not isinstance(body, dict):
        raise web.HTTPBadRequest(
            text=json.dumps({"error": {"code": "BadRequest", "message": "expected an object"}}),
            content_type="application/json",
        )
    return body


def _origin(request: web.Request) -> str:
    return f"{request.scheme}://{request.host}"


class _Routes:
    def __init__(self, grid: EventGrid) -> None:
        self.grid = grid
        self.engine = grid.engine

    def register(self, app: web.Application) -> None:
        base = "/control/eventgrid"
        router = app.router
        router.add_get(f"{base}/subscriptions", self.list_subscriptions)
        router.add_put(f"{base}/subscriptions/{{name}}", self.put_subscription)
        router.add_get(f"{base}/subscriptions/{{name}}", self.get_subscription)
        router.add_delete(f"{base}/subscriptions/{{name}}", self.delete_subscription)
        router.add_get(f"{base}/events", self.events)
        router.add_get(f"{base}/deliveries", self.deliveries)
        router.add_get(f"{base}/deadletters", self.dead_letters)
        router.add_get(f"{base}/settings", self.get_settings)
        router.add_put(f"{base}/settings", self.put_settings)
        router.add_post(f"{base}/drain", self.drain)
        router.add_post(f"{base}/reset", self.reset)
        router.add_get(f"{base}/topics", self.list_topics)
        router.add_put(f"{base}/topics/{{name}}", self.put_topic)
        router.add_get(f"{base}/topics/{{name}}", self.get_topic)
        router.add_get(f"{base}/topics/{{name}}/events", self.topic_events)
        router.add_delete(f"{base}/topics/{{name}}/events", self.clear_topic_events)
        router.add_get("/eventgrid/subscriptions/{name}/validate", self.validate_url)

    # --- subscriptions ----------------------------------------------------------------------

    async def list_subscriptions(self, request: web.Request) -> web.Response:
        subs = self.engine.subscriptions.values()
        return web.json_response({"value": [s.to_json() for s in subs]})

    async def get_subscription(self, request: web.Request) -> web.Response:
        subscription = self.engine.subscriptions.get(request.match_info["name"])
        if subscription is None:
            return _error(404, "NotFound", "No such event subscription.")
        return web.json_response(subscription.to_json())

    async def delete_subscription(self, request: web.Request) -> web.Response:
        removed = self.engine.subscriptions.pop(request.match_info["name"], None)
        return web.Response(status=200 if removed else 204)

    async def put_subscription(self, request: web.Request) -> web.Response:
        """Create or replace a subscription, validating the webhook first as Azure does."""
        name = request.match_info["name"]
        body = await _body(request)
        try:
            subscription = _subscription_from(name, body, self.grid.state.clock.now())
        except (KeyError, TypeError, ValueError) as error:
            return _error(400, "InvalidRequest", f"Invalid event subscription: {error}")
        existed = name in self.engine.subscriptions
        custom = self.grid.sink.topic_by_id(subscription.topic)
        if (
            custom is not None
            and custom.input_schema == SCHEMA_CLOUDEVENTS
            and subscription.schema != SCHEMA_CLOUDEVENTS
        ):
            return _error(
                400,
                "InvalidRequest",
                "A topic whose input schema is CloudEventSchemaV1_0 delivers only in "
                "CloudEventSchemaV1_0.",
            )
        validation_url = (
            f"{_origin(request)}/eventgrid/subscriptions/{name}/validate"
            f"?code={subscription.validation_code}"
        )
        if body.get("skipValidation"):
            subscription.provisioning_state = "Succeeded"
        else:
            try:
                await self.engine.validate(subscription, validation_url)
            except HandshakeFailed as failure:
                return _error(400, "Url validation", str(failure))
        self.engine.subscriptions[name] = subscription
        return web.json_response(subscription.to_json(), status=200 if existed else 201)

    async def validate_url(self, request: web.Request) -> web.Response:
        """The manual handshake: a GET on the ``validationUrl`` activates the subscription."""
        subscription = self.engine.subscriptions.get(request.match_info["name"])
        if subscription is None or request.query.get("code") != subscription.validation_code:
            return _error(400, "BadRequest", "The validation request is not valid.")
        if subscription.provisioning_state == "AwaitingManualAction":
            subscription.provisioning_state = "Succeeded"
        return web.Response(text="Webhook successfully validated as a subscription endpoint.")

    # --- records ----------------------------------------------------------------------------

    async def events(self, request: web.Request) -> web.Response:
        topic = request.query.get("topic", "").lower()
        event_type = request.query.get("eventType", "").lower()
        value = [
            e.to_eventgrid()
            for e in self.grid.published
            if (not topic or e.topic.lower() == topic)
            and (not event_type or e.event_type.lower() == event_type)
        ]
        return web.json_response({"value": value})

    async def deliveries(self, request: web.Request) -> web.Response:
        name = request.query.get("subscription")
        value = [a.to_json() for a in self.engine.attempts if not name or a.subscription == name]
        return web.json_response({"value": value})

    async def dead_letters(self, request: web.Request) -> web.Response:
        name = request.query.get("subscription")
        source = (
            self.engine.dropped
            if request.query.get("dropped", "").lower() == "true"
            else self.engine.dead_letters
        )
        value = [d.to_json() for d in source if not name or d.subscription == name]
        return web.json_response({"value": value})

    async def get_settings(self, request: web.Request) -> web.Response:
        return web.json_response(self.engine.settings.to_json())

    async def put_settings(self, request: web.Request) -> web.Response:
        try:
            self.engine.configure(await _body(request))
        except ValueError as error:
            return _error(400, "InvalidRequest", str(error))
        return web.json_response(self.engine.settings.to_json())

    async def drain(self, request: web.Request) -> web.Response:
        body = await _body(request)
        idle = await self.engine.drain(float(body.get("timeout", 10.0)))
        return web.json_response({"idle": idle, "pending": self.engine.pending})

    async def reset(self, request: web.Request) -> web.Response:
        self.grid.published.clear()
        self.engine.attempts.clear()
        self.engine.dead_letters.clear()
        self.engine.dropped.clear()
        for topic in self.grid.sink.topics.values():
            topic.received.clear()
        return web.json_response({"reset": True})

    # --- custom topics (the sink) -----------------------------------------------------------

    async def list_topics(self, request: web.Request) -> web.Response:
        origin = _origin(request)
        topics = self.grid.sink.topics.values()
        return web.json_response({"value": [t.to_json(origin) for t in topics]})

    async def put_topic(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        body = await _body(request)
        schema = body.get("inputSchema", "EventGridSchema")
        if schema not in SCHEMAS:
            return _error(400, "InvalidRequest", f"inputSchema must be one of {SCHEMAS}")
        topic = self.grid.sink.topics.get(name)
        created = topic is None
        if topic is None:
            topic = CustomTopic(name=name)
            self.grid.sink.topics[name] = topic
        topic.input_schema = schema
        if body.get("key1"):
            topic.key1 = str(body["key1"])
        if body.get("key2"):
            topic.key2 = str(body["key2"])
        return web.json_response(topic.to_json(_origin(request)), status=201 if created else 200)

    async def get_topic(self, request: web.Request) -> web.Response:
        topic = self.grid.sink.topics.get(request.match_info["name"])
        if topic is None:
            return _error(404, "NotFound", "No such topic.")
        return web.json_response(topic.to_json(_origin(request)))

    async def topic_events(self, request: web.Request) -> web.Response:
        topic = self.grid.sink.topics.get(request.match_info["name"])
        if topic is None:
            return _error(404, "NotFound", "No such topic.")
        return web.json_response({"value": topic.received})

    async def clear_topic_events(self, request: web.Request) -> web.Response:
        topic = self.grid.sink.topics.get(request.match_info["name"])
        if topic is not None:
            topic.received.clear()
        return web.Response(status=204)


def _subscription_from(name: str, body: dict[str, Any], now: float) -> EventSubscription:
    """Build a subscription from the control body (ARM's property names)."""
    schema = body.get("eventDeliverySchema", "EventGridSchema")
    if schema not in SCHEMAS:
        raise ValueError(f"eventDeliverySchema must be one of {SCHEMAS}")
    endpoint = str(body["endpoint"])
    if not endpoint.startswith(("https://", "http://127.0.0.1", "http://localhost")):
        raise ValueError("endpoint must be https, or http on loopback")
    types = body.get("includedEventTypes")
    attempts = int(body.get("maxDeliveryAttempts", 30))
    ttl = int(body.get("eventTimeToLiveInMinutes", 1440))
    batch = int(body.get("maxEventsPerBatch", 1))
    # Azure's bounds for the retry policy and batching.
    if not 1 <= attempts <= 30:
        raise ValueError("maxDeliveryAttempts must be between 1 and 30")
    if not 1 <= ttl <= 1440:
        raise ValueError("eventTimeToLiveInMinutes must be between 1 and 1440")
    if not 1 <= batch <= 5000:
        raise ValueError("maxEventsPerBatch must be between 1 and 5000")
    destination = body.get("deadLetterDestination") or {}
    if not isinstance(destination, dict):
        raise ValueError("deadLetterDestination must be an object")
    container = destination.get("blobContainerName")
    connection = destination.get("connectionString")
    if (container is None) != (connection is None):
        raise ValueError("deadLetterDestination needs blobContainerName and connectionString")
    return EventSubscription(
        name=name,
        topic=str(body["topic"]),
        endpoint=endpoint,
        schema=schema,
        included_event_types=[str(t) for t in types] if types is not None else None,
        subject_begins_with=str(body.get("subjectBeginsWith", "")),
        subject_ends_with=str(body.get("subjectEndsWith", "")),
        max_delivery_attempts=attempts,
        event_ttl_minutes=ttl,
        max_events_per_batch=batch,
        dead_letter=bool(body.get("deadLetter", False)) or container is not None,
        dead_letter_container=str(container) if container is not None else None,
        dead_letter_connection=str(connection) if connection is not None else None,
        created=now,
    )
