"""A custom-topic endpoint that records what keyward publishes (EventGridPublisherClient).

Azure's topic endpoint is ``https://<topic>.<region>-1.eventgrid.azure.net/api/events``; here
it is ``https://127.0.0.1:<port>/eventgrid/topics/<topic>/api/events``, which
``EventGridPublisherClient(endpoint, credential)`` posts to unchanged (it appends only
``?api-version=2018-01-01``). Like a real topic it takes one input schema (Event Grid or
CloudEvents 1.0), authenticates with ``aeg-sas-key`` (either of two keys), ``aeg-sas-token``
(what ``generate_sas`` makes) or a bearer token for ``https://eventgrid.azure.net``, refuses
bodies over 1 MB, and answers 200 with an empty body.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, quote, unquote

from aiohttp import web

from devtools.emulator import auth
from devtools.emulator.eventgrid_delivery import DeliveryEngine
from devtools.emulator.eventgrid_model import (
    SCHEMA_CLOUDEVENTS,
    SCHEMA_EVENTGRID,
    SCHEMAS,
    Event,
)
from devtools.emulator.state import DEFAULT_RESOURCE_GROUP, DEFAULT_SUBSCRIPTION_ID, EmulatorState

EVENTGRID_AUDIENCE = "https://eventgrid.azure.net"
#: Event Grid's publish limit per request.
MAX_REQUEST_BYTES = 1024 * 1024
#: Data-plane api-versions of Event Grid basic topics (the SDK sends 2018-01-01).
API_VERSIONS = frozenset({"2018-01-01"})
#: What generate_sas leaves unescaped.
_SAS_SAFE = "~()*!.'"


def new_key() -> str:
    """A topic access key in Azure's form (base64 of 32 random bytes)."""
    return base64.b64encode(secrets.token_bytes(32)).decode("ascii")


@dataclass
class CustomTopic:
    name: str
    input_schema: str = SCHEMA_EVENTGRID
    key1: str = field(default_factory=new_key)
    key2: str = field(default_factory=new_key)
    subscription_id: str = DEFAULT_SUBSCRIPTION_ID
    resource_group: str = DEFAULT_RESOURCE_GROUP
    received: list[dict[str, Any]] = field(default_factory=list)

    @property
    def arm_id(self) -> str:
        return (
            f"/subscriptions/{self.subscription_id}/resourceGroups/{self.resource_group}"
            f"/providers/Microsoft.EventGrid/topics/{self.name}"
        )

    def to_json(self, origin: str) -> dict[str, Any]:
        return {
            "name": self.name,
            "id": self.arm_id,
            "endpoint": f"{origin}/eventgrid/topics/{self.name}/api/events",
            "inputSchema": self.input_schema,
            "key1": self.key1,
            "key2": self.key2,
            "received": len(self.received),
        }


def _error(status: int, code: str, message: str) -> web.Response:
    return web.json_response({"error": {"code": code, "message": message}}, status=status)


def _sas_valid(token: str, keys: tuple[str, ...], now: float) -> bool:
    """Check an ``aeg-sas-token`` (``r=<resource>&e=<expiry>&s=<signature>``)."""
    unsigned, sep, signature_part = token.rpartition("&s=")
    if not sep:
        return False
    fields = parse_qs(unsigned)
    expiry_text = fields.get("e", [""])[0]
    try:
        expiry = dt.datetime.fromisoformat(unquote(expiry_text))
    except ValueError:
        return False
    if expiry.tzinfo is None:
        expiry = expiry.replace(tzinfo=dt.UTC)
    if expiry.timestamp() <= now:
        return False
    signature = unquote(signature_part)
    for key in keys:
        digest = hmac.new(base64.b64decode(key), unsigned.encode("ascii"), hashlib.sha256).digest()
        expected = base64.b64encode(digest).decode("ascii")
        if hmac.compare_digest(expected, signature) or hmac.compare_digest(
            quote(expected, safe=_SAS_SAFE), signature_part
        ):
            return True
    return False


class Sink:
    """The custom topics and what was published to them."""

    def __init__(self, state: EmulatorState, engine: DeliveryEngine) -> None:
        self._state = state
        self._engine = engine
        self.topics: dict[str, CustomTopic] = {}

    def topic_by_id(self, arm_id: str) -> CustomTopic | None:
        for topic in self.topics.values():
            if topic.arm_id.lower() == arm_id.lower():
                return topic
        return None

    def register(self, app: web.Application) -> None:
        app.router.add_post("/eventgrid/topics/{topic}/api/events", self._publish)

    def _authenticated(self, request: web.Request, topic: CustomTopic) -> str | None:
        """How the caller proved itself (``key``, ``sas`` or ``bearer``), or None."""
        keys = (topic.key1, topic.key2)
        key = request.headers.get("aeg-sas-key")
        if key is not None:
            return "key" if any(hmac.compare_digest(key, k) for k in keys) else None
        token = request.headers.get("aeg-sas-token")
        if token is not None:
            return "sas" if _sas_valid(token, keys, time.time()) else None
        caller = auth.authenticate(
            request.headers.get("Authorization"), self._state, (EVENTGRID_AUDIENCE,)
        )
        return "bearer" if caller is not None else None

    async def _publish(self, request: web.Request) -> web.Response:
        topic = self.topics.get(request.match_info["topic"])
        host = request.host
        if topic is None:
            return _error(404, "NotFound", f"The topic for {host} was not found.")
        how = self._authenticated(request, topic)
        if how is None:
            return _error(
                401,
                "Unauthorized",
                f"The request authorization key is not authorized for {host.upper()}. This is "
                "due to the reason: The request authorization key is not valid.",
            )
        version = request.query.get("api-version")
        if version not in API_VERSIONS:
            return _error(
                400,
                "BadRequest",
                f"The api-version '{version}' is not supported; supported: "
                f"{', '.join(sorted(API_VERSIONS))}.",
            )
        body = await request.read()
        if len(body) > MAX_REQUEST_BYTES:
            return _error(413, "RequestEntityTooLarge", "The request exceeds 1048576 bytes.")
        try:
            payload = json.loads(body)
        except ValueError:
            return _error(400, "BadRequest", "The request body is not valid JSON.")
        problem = _check(topic.input_schema, request.content_type, payload)
        if problem:
            return _error(400, "BadRequest", problem)
        events = payload if isinstance(payload, list) else [payload]
        now = self._state.clock.now()
        for event in events:
            topic.received.append(
                {
                    "receivedAt": now,
                    "auth": how,
                    "contentType": request.content_type,
                    "event": event,
                }
            )
            # The topic's own event subscriptions get it too.
            self._engine.enqueue(_as_event(topic, event, now))
        return web.Response(status=200)


def _check(schema: str, content_type: str, payload: Any) -> str | None:
    """What a topic of ``schema`` finds wrong with a request, or None."""
    if schema == SCHEMA_CLOUDEVENTS:
        if content_type == "application/cloudevents+json" and isinstance(payload, dict):
            events = [payload]
        elif content_type == "application/cloudevents-batch+json" and isinstance(payload, list):
            events = payload
        else:
            return (
                "This resource is configured to receive event in 'CloudEventV10' schema. The "
                "JSON received does not conform to the expected schema."
            )
        for event in events:
            if not isinstance(event, dict):
                return "Each CloudEvent must be a JSON object."
            missing = [k for k in ("id", "source", "type", "specversion") if not event.get(k)]
            if missing:
                return f"Required CloudEvent attributes are missing: {', '.join(missing)}."
            if event["specversion"] != "1.0":
                return "Only CloudEvents specversion 1.0 is supported."
        return None
    if (
        schema not in SCHEMAS
        or not isinstance(payload, list)
        or content_type.startswith("application/cloudevents")
    ):
        return (
            "This resource is configured to receive event in 'EventGridEvent' schema. The JSON "
            "received does not conform to the expected schema."
        )
    for event in payload:
        if not isinstance(event, dict):
            return "Each event must be a JSON object."
        missing = [
            k
            for k in ("id", "subject", "eventType", "eventTime", "dataVersion")
            if not event.get(k)
        ]
        if missing:
            return f"Required properties are missing: {', '.join(missing)}."
    return None


def _as_event(topic: CustomTopic, raw: dict[str, Any], now: float) -> Event:
    """A published event, kept as sent, for delivery to the topic's event subscriptions."""
    cloud = topic.input_schema == SCHEMA_CLOUDEVENTS
    data = raw.get("data")
    return Event(
        topic=topic.arm_id,
        event_type=str(raw.get("type" if cloud else "eventType", "")),
        subject=str(raw.get("subject") or ""),
        data=data if isinstance(data, dict) else {"value": data},
        event_time=now,
        data_version=str(raw.get("dataVersion", "")),
        id=str(raw.get("id", "")),
        raw=raw,
        raw_schema=topic.input_schema,
    )
