"""Microsoft.EventGrid/systemTopics and their eventSubscriptions on the emulator's ARM surface
(azure-mgmt-eventgrid 10.4, api-version 2025-02-15), delivering for real.

Shapes follow Azure/azure-rest-api-specs ``specification/eventgrid/resource-manager/
Microsoft.EventGrid/stable/2025-02-15/EventGrid.json`` and its examples (``SystemTopics_*``,
``SystemTopicEventSubscriptions_*``, ``EventSubscriptions_GetForCustomTopic_AzureFunction
Destination.json``): a system topic is ``{id, name, type, location, tags, properties:
{source, topicType, metricResourceId, provisioningState}}``; an event subscription
``{id, name, type, properties: {topic, destination: {endpointType, properties}, filter:
{includedEventTypes, advancedFilters, ...}, eventDeliverySchema, retryPolicy:
{maxDeliveryAttempts, eventTimeToLiveInMinutes}, deadLetterDestination: {endpointType:
"StorageBlob", properties: {resourceId, blobContainerName}}, provisioningState}}``. PUTs are
long-running (201, ``Azure-AsyncOperation``), as the spec marks them; the operation has
already ended when its status is read. DELETE answers 200.

An event subscription written here is registered with the emulator's delivery engine
(``eventgrid_delivery.DeliveryEngine``) so events on its topic's source really arrive:

* an ``AzureFunction`` destination (``.../Microsoft.Web/sites/{app}/functions/{fn}``) is
  the local Functions host's Event Grid webhook, ``{url}/runtime/webhooks/eventgrid?
  functionName={fn}&code={eventgridKey}``, for a site registered with
  ``PUT /control/arm/sites/{app}`` ``{"url", "eventgridKey"}``; an unknown site is refused
  (Azure refuses a destination function it cannot find); no handshake, as in Azure;
* a ``WebHook`` destination goes through the engine's handshake;
* a ``StorageBlob`` dead-letter destination names a storage account by resource id; one
  registered with ``PUT /control/arm/storageAccounts/{name}`` ``{"connectionString"}``
  (Azurite) gets the engine's dead-letter blobs; otherwise they are kept in memory only;
* advanced filters ``StringIn``, ``StringNotIn``, ``StringBeginsWith``, ``StringEndsWith``,
  ``StringContains`` on ``data.*``, ``subject``, ``eventType`` are applied (ANDed; strings
  compared ignoring case, the emulator's reading); other operators are refused as not
  emulated.

``GET /control/arm/writes`` lists every ARM request that was not a read (method, path), so a
test can prove that a command wrote nothing.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from devtools.emulator.arm_cognitive import LroSettings
from devtools.emulator.arm_common import ArmError, Call, Dispatcher, iso
from devtools.emulator.eventgrid_model import (
    SCHEMA_EVENTGRID,
    SCHEMAS,
    Event,
    EventSubscription,
)
from devtools.emulator.state import EmulatorState

TOPICS_TYPE = "Microsoft.EventGrid/systemTopics"
SUBSCRIPTIONS_TYPE = "Microsoft.EventGrid/systemTopics/eventSubscriptions"
API_VERSIONS = frozenset(
    {"2025-02-15", "2024-06-01-preview", "2023-12-15-preview", "2022-06-15", "2021-12-01"}
)
#: Topic types the emulator publishes events for (Key Vault, a subscription, a group).
TOPIC_TYPES = (
    "microsoft.keyvault.vaults",
    "microsoft.resources.subscriptions",
    "microsoft.resources.resourcegroups",
)
FILTER_OPERATORS = (
    "StringIn",
    "StringNotIn",
    "StringBeginsWith",
    "StringEndsWith",
    "StringContains",
)
_FUNCTION = re.compile(
    r"^/subscriptions/[^/]+/resourceGroups/[^/]+/providers/Microsoft\.Web/sites/([^/]+)"
    r"/functions/([^/]+)$",
    re.I,
)
#: Event Grid's event subscription names: 3 to 64 of a-z, A-Z, 0-9, "-" (docs/emulator.md).
_SUBSCRIPTION_NAME = re.compile(r"^[A-Za-z0-9-]{3,64}$")
_STORAGE = re.compile(
    r"^/subscriptions/[^/]+/resourceGroups/[^/]+/providers/Microsoft\.Storage"
    r"/storageAccounts/([^/]+)$",
    re.I,
)


@dataclass
class SystemTopic:
    subscription_id: str
    resource_group: str
    name: str
    location: str
    source: str
    topic_type: str
    tags: dict[str, str] = field(default_factory=dict)
    metric_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    created: float = 0.0
    #: event subscription name (lower case) -> its ARM body's ``properties`` as stored.
    subscriptions: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def arm_id(self) -> str:
        return (
            f"/subscriptions/{self.subscription_id}/resourceGroups/{self.resource_group}"
            f"/providers/Microsoft.EventGrid/systemTopics/{self.name}"
        )

    def engine_name(self, subscription: str) -> str:
        """The delivery engine's name for one of its subscriptions (unique per topic)."""
        return f"{self.name}-{subscription}".lower()


@dataclass
class ArmEventGridState:
    """What this surface keeps (``EmulatorState.arm_eventgrid``); not persisted."""

    topics: dict[str, SystemTopic] = field(default_factory=dict)  # arm id (lower) -> topic
    sites: dict[str, dict[str, str]] = field(default_factory=dict)  # app name -> url, key
    storage_accounts: dict[str, str] = field(default_factory=dict)  # name -> connection
    writes: list[dict[str, str]] = field(default_factory=list)


@dataclass
class FilteredSubscription(EventSubscription):
    """An engine subscription with Event Grid's advanced filters (ANDed)."""

    advanced_filters: list[tuple[str, str, tuple[str, ...]]] = field(default_factory=list)

    def matches(self, event: Event) -> bool:
        if not super().matches(event):
            return False
        return all(_passes(event, *item) for item in self.advanced_filters)


def _field(event: Event, key: str) -> str | None:
    lowered = key.lower()
    if lowered == "subject":
        return event.subject
    if lowered == "eventtype":
        return event.event_type
    if not lowered.startswith("data."):
        return None
    value: Any = event.data
    for part in key.split(".")[1:]:
        if not isinstance(value, dict):
            return None
        match = next((k for k in value if k.lower() == part.lower()), None)
        if match is None:
            return None
        value = value[match]
    return None if isinstance(value, dict | list) or value is None else str(value)


def _passes(event: Event, operator: str, key: str, values: tuple[str, ...]) -> bool:
    found = _field(event, key)
    wanted = [v.lower() for v in values]
    if found is None:
        return False  # an absent key, an array or an object never matches
    text = found.lower()
    if operator == "StringIn":
        return text in wanted
    if operator == "StringNotIn":
        return text not in wanted
    if operator == "StringBeginsWith":
        return any(text.startswith(v) for v in wanted)
    if operator == "StringEndsWith":
        return any(text.endswith(v) for v in wanted)
    return any(v in text for v in wanted)


def register(
    app: web.Application, state: EmulatorState, dispatcher: Dispatcher, lro: LroSettings
) -> None:
    """Add the Event Grid ARM routes, the write log and the control routes."""
    data = ArmEventGridState()
    state.arm_eventgrid = data
    provider = SystemTopicsProvider(state, data, lro)
    provider.register(dispatcher)

    @web.middleware
    async def log_writes(request: web.Request, handler: Any) -> web.StreamResponse:
        path = request.path.lower()
        if request.method not in ("GET", "HEAD") and path.startswith(
            ("/subscriptions/", "/providers/")
        ):
            data.writes.append({"method": request.method, "path": request.path})
        response: web.StreamResponse = await handler(request)
        return response

    app.middlewares.append(log_writes)
    router = app.router
    router.add_put("/control/arm/sites/{name}", provider.put_site)
    router.add_get("/control/arm/sites", provider.list_sites)
    router.add_put("/control/arm/storageAccounts/{name}", provider.put_storage_account)
    router.add_get("/control/arm/writes", provider.list_writes)


class SystemTopicsProvider:
    def __init__(self, state: EmulatorState, data: ArmEventGridState, lro: LroSettings) -> None:
        self.state = state
        self.data = data
        self.lro = lro

    def register(self, dispatcher: Dispatcher) -> None:
        rg = "/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.EventGrid"
        topic = rg + "/systemTopics/{topic}"
        add = dispatcher.add
        add(
            "GET",
            "/subscriptions/{sub}/providers/Microsoft.EventGrid/systemTopics",
            self.list_topics,
            API_VERSIONS,
            TOPICS_TYPE,
        )
        add("GET", rg + "/systemTopics", self.list_topics, API_VERSIONS, TOPICS_TYPE)
        add("GET PUT DELETE", topic, self.topic, API_VERSIONS, TOPICS_TYPE)
        add(
            "GET",
            topic + "/eventSubscriptions",
            self.list_subscriptions,
            API_VERSIONS,
            SUBSCRIPTIONS_TYPE,
        )
        add(
            "GET PUT DELETE",
            topic + "/eventSubscriptions/{name}",
            self.subscription,
            API_VERSIONS,
            SUBSCRIPTIONS_TYPE,
        )
        add(
            "GET",
            "/subscriptions/{sub}/providers/Microsoft.EventGrid/locations/{loc}"
            "/operationsStatus/{op}",
            self.operation_status,
            API_VERSIONS,
            TOPICS_TYPE,
        )

    # --- system topics ----------------------------------------------------------------------

    def _topic_json(self, topic: SystemTopic, state: str = "Succeeded") -> dict[str, Any]:
        return {
            "properties": {
                "provisioningState": state,
                "source": topic.source,
                "topicType": topic.topic_type,
                "metricResourceId": topic.metric_id,
            },
            "location": topic.location,
            "tags": topic.tags,
            "id": topic.arm_id,
            "name": topic.name,
            "type": TOPICS_TYPE,
            "systemData": {"createdAt": iso(topic.created), "lastModifiedAt": iso(topic.created)},
        }

    def _topic_id(self, call: Call) -> str:
        p = call.params
        return (
            f"/subscriptions/{p['sub']}/resourceGroups/{p['rg']}/providers/Microsoft.EventGrid"
            f"/systemTopics/{p['topic']}"
        ).lower()

    def _find_topic(self, call: Call) -> SystemTopic:
        topic = self.data.topics.get(self._topic_id(call))
        if topic is None:
            raise ArmError(
                404,
                "ResourceNotFound",
                f"The Resource 'Microsoft.EventGrid/systemTopics/{call.params['topic']}' under "
                f"resource group '{call.params['rg']}' was not found.",
            )
        return topic

    async def list_topics(self, call: Call) -> web.Response:
        sub, rg = call.params["sub"].lower(), call.params.get("rg", "").lower()
        value = [
            self._topic_json(t)
            for t in self.data.topics.values()
            if t.subscription_id.lower() == sub and (not rg or t.resource_group.lower() == rg)
        ]
        return web.json_response({"value": value, "nextLink": None})

    async def topic(self, call: Call) -> web.Response:
        method = call.request.method
        if method == "GET":
            return web.json_response(self._topic_json(self._find_topic(call)))
        if method == "DELETE":
            topic = self.data.topics.pop(self._topic_id(call), None)
            if topic is None:
                return web.Response(status=204)
            for name in topic.subscriptions:
                self._engine().pop(topic.engine_name(name), None)
            return web.Response(status=200)
        return await self._put_topic(call)

    async def _put_topic(self, call: Call) -> web.Response:
        body = await call.body()
        props = body.get("properties") or {}
        source = str(props.get("source") or "")
        topic_type = str(props.get("topicType") or "").lower()
        location = str(body.get("location") or "")
        if topic_type not in TOPIC_TYPES:
            raise ArmError(
                400,
                "InvalidRequest",
                f"Topic type '{topic_type}' is not supported "
                f"by the emulator ({', '.join(TOPIC_TYPES)}).",
            )
        if not location:
            raise ArmError(400, "InvalidRequest", "The location property is required.")
        self._check_source(source, topic_type)
        existing = self.data.topics.get(self._topic_id(call))
        if existing is not None:
            if existing.source.lower() != source.lower() or existing.topic_type != topic_type:
                raise ArmError(
                    400,
                    "InvalidRequest",
                    "The source and topic type of a system topic cannot change.",
                )
            existing.tags = dict(body.get("tags") or {})
            return self._accepted(call, self._topic_json(existing, "Updating"), 200)
        for other in self.data.topics.values():
            if other.source.lower() == source.lower():
                raise ArmError(
                    400,
                    "InvalidRequest",
                    f"Only one system topic is allowed per source; '{other.name}' "
                    f"already exists for '{source}'.",
                )
        topic = SystemTopic(
            subscription_id=call.params["sub"],
            resource_group=call.params["rg"],
            name=call.params["topic"],
            location=location,
            source=source,
            topic_type=topic_type,
            tags=dict(body.get("tags") or {}),
            created=self.state.clock.now(),
        )
        self.data.topics[topic.arm_id.lower()] = topic
        return self._accepted(call, self._topic_json(topic, "Creating"), 201)

    def _check_source(self, source: str, topic_type: str) -> None:
        if topic_type == "microsoft.keyvault.vaults":
            if not any(v.arm_id.lower() == source.lower() for v in self.state.vaults.values()):
                raise ArmError(400, "InvalidRequest", f"The source '{source}' was not found.")
        elif not re.match(r"^/subscriptions/[^/]+(/resourceGroups/[^/]+)?$", source, re.I):
            raise ArmError(400, "InvalidRequest", f"The source '{source}' is not valid.")

    def _accepted(self, call: Call, body: dict[str, Any], status: int) -> web.Response:
        """A long-running PUT: the resource, and where to read the operation's status."""
        response = web.json_response(body, status=status)
        operation = str(uuid.uuid4()).upper()
        version = call.request.query.get("api-version", "2025-02-15")
        response.headers["Azure-AsyncOperation"] = (
            f"{call.origin}/subscriptions/{call.params['sub']}/providers/Microsoft.EventGrid"
            f"/locations/global/operationsStatus/{operation}?api-version={version}"
        )
        if self.lro.retry_after is not None:
            response.headers["Retry-After"] = self.lro.retry_after
        return response

    async def operation_status(self, call: Call) -> web.Response:
        op = call.params["op"]
        now = iso(self.state.clock.now())
        return web.json_response(
            {
                "id": call.request.path,
                "name": op,
                "status": "Succeeded",
                "startTime": now,
                "endTime": now,
            }
        )

    # --- event subscriptions ----------------------------------------------------------------

    def _subscription_json(
        self, topic: SystemTopic, name: str, state: str = "Succeeded"
    ) -> dict[str, Any]:
        props = dict(topic.subscriptions[name.lower()])
        stored_name = props.pop("_name", name)
        return {
            "properties": {**props, "topic": topic.source, "provisioningState": state},
            "id": f"{topic.arm_id}/eventSubscriptions/{stored_name}",
            "name": stored_name,
            "type": SUBSCRIPTIONS_TYPE,
        }

    async def list_subscriptions(self, call: Call) -> web.Response:
        topic = self._find_topic(call)
        value = [self._subscription_json(topic, n) for n in topic.subscriptions]
        return web.json_response({"value": value, "nextLink": None})

    async def subscription(self, call: Call) -> web.Response:
        topic = self._find_topic(call)
        name = call.params["name"]
        method = call.request.method
        if method == "GET":
            if name.lower() not in topic.subscriptions:
                raise ArmError(
                    404, "ResourceNotFound", f"The event subscription '{name}' was not found."
                )
            return web.json_response(self._subscription_json(topic, name))
        if method == "DELETE":
            if topic.subscriptions.pop(name.lower(), None) is None:
                return web.Response(status=204)
            self._engine().pop(topic.engine_name(name), None)
            return web.Response(status=200)
        if not _SUBSCRIPTION_NAME.match(name):
            raise ArmError(
                400,
                "InvalidRequest",
                f"The length of {name} is {len(name)}, or it has characters other than letters, "
                "digits and '-'. EventSubscription name must be between 3 and 64 characters "
                "in length and use alphanumeric letters and '-' only.",
            )
        body = await call.body()
        props = dict(body.get("properties") or {})
        existed = name.lower() in topic.subscriptions
        engine_subscription = await self._engine_subscription(topic, name, props, call)
        props.pop("topic", None)
        props.pop("provisioningState", None)
        topic.subscriptions[name.lower()] = {**props, "_name": name}
        self._engine()[engine_subscription.name] = engine_subscription
        # The spec (and so the SDK) allows only 201 for this PUT, also for an update.
        state = "Updating" if existed else "Creating"
        return self._accepted(call, self._subscription_json(topic, name, state), 201)

    def _engine(self) -> dict[str, EventSubscription]:
        from devtools.emulator.eventgrid import EventGrid

        grid = self.state.events
        if not isinstance(grid, EventGrid):
            raise ArmError(500, "InternalServerError", "Event Grid is not running.")
        return grid.engine.subscriptions

    async def _engine_subscription(
        self, topic: SystemTopic, name: str, props: dict[str, Any], call: Call
    ) -> FilteredSubscription:
        """Validate ``props`` as Event Grid does and build the delivery engine's subscription."""
        destination = props.get("destination") or {}
        endpoint_type = str(destination.get("endpointType") or "")
        target = destination.get("properties") or {}
        validate = False
        if endpoint_type == "AzureFunction":
            endpoint = self._function_url(str(target.get("resourceId") or ""))
        elif endpoint_type == "WebHook":
            endpoint, validate = str(target.get("endpointUrl") or ""), True
        else:
            raise ArmError(
                400,
                "InvalidRequest",
                f"Destination endpoint type '{endpoint_type}' is not emulated "
                "(AzureFunction, WebHook).",
            )
        flt = props.get("filter") or {}
        filters = []
        for item in flt.get("advancedFilters") or []:
            operator = str(item.get("operatorType") or "")
            if operator not in FILTER_OPERATORS:
                raise ArmError(
                    400, "InvalidRequest", f"Advanced filter operator '{operator}' is not emulated."
                )
            values = tuple(str(v) for v in item.get("values") or [])
            filters.append((operator, str(item.get("key") or ""), values))
        retry = props.get("retryPolicy") or {}
        attempts = int(retry.get("maxDeliveryAttempts", 30))
        ttl = int(retry.get("eventTimeToLiveInMinutes", 1440))
        if not 1 <= attempts <= 30 or not 1 <= ttl <= 1440:
            raise ArmError(
                400,
                "InvalidRequest",
                "maxDeliveryAttempts must be 1-30 and eventTimeToLiveInMinutes 1-1440.",
            )
        schema = str(props.get("eventDeliverySchema") or SCHEMA_EVENTGRID)
        if schema not in SCHEMAS:
            raise ArmError(
                400, "InvalidRequest", f"eventDeliverySchema '{schema}' is not emulated."
            )
        container, connection = self._dead_letter(props.get("deadLetterDestination"))
        types = flt.get("includedEventTypes")
        subscription = FilteredSubscription(
            name=topic.engine_name(name),
            topic=topic.source,
            endpoint=endpoint,
            schema=schema,
            included_event_types=[str(t) for t in types] if types else None,
            subject_begins_with=str(flt.get("subjectBeginsWith") or ""),
            subject_ends_with=str(flt.get("subjectEndsWith") or ""),
            max_delivery_attempts=attempts,
            event_ttl_minutes=ttl,
            max_events_per_batch=int(target.get("maxEventsPerBatch") or 1),
            dead_letter=container is not None,
            dead_letter_container=container if connection else None,
            dead_letter_connection=connection,
            created=self.state.clock.now(),
            advanced_filters=filters,
        )
        if validate:
            from devtools.emulator.eventgrid_delivery import HandshakeFailed

            grid = self.state.events
            engine = grid.engine  # type: ignore[attr-defined]
            url = f"{call.origin}/eventgrid/subscriptions/{subscription.name}/validate"
            try:
                await engine.validate(subscription, f"{url}?code={subscription.validation_code}")
            except HandshakeFailed as failure:
                raise ArmError(400, "Url validation", str(failure)) from failure
        return subscription

    def _function_url(self, resource_id: str) -> str:
        match = _FUNCTION.match(resource_id)
        if match is None:
            raise ArmError(
                400, "InvalidRequest", f"'{resource_id}' is not an Azure Function resource id."
            )
        site = self.data.sites.get(match.group(1).lower())
        if site is None:
            raise ArmError(
                400, "InvalidRequest", f"The Azure Function '{resource_id}' was not found."
            )
        return (
            f"{site['url'].rstrip('/')}/runtime/webhooks/eventgrid?functionName="
            f"{match.group(2)}&code={site['eventgridKey']}"
        )

    def _dead_letter(self, raw: Any) -> tuple[str | None, str | None]:
        if not raw:
            return None, None
        if raw.get("endpointType") != "StorageBlob":
            raise ArmError(400, "InvalidRequest", "Only StorageBlob dead-letter destinations.")
        props = raw.get("properties") or {}
        container = str(props.get("blobContainerName") or "")
        match = _STORAGE.match(str(props.get("resourceId") or ""))
        if match is None or not container:
            raise ArmError(
                400,
                "InvalidRequest",
                "A StorageBlob dead-letter destination needs a storage account "
                "resource id and a blob container name.",
            )
        return container, self.data.storage_accounts.get(match.group(1).lower())

    # --- control ----------------------------------------------------------------------------

    async def put_site(self, request: web.Request) -> web.Response:
        body = await request.json()
        site = {"url": str(body["url"]), "eventgridKey": str(body["eventgridKey"])}
        self.data.sites[request.match_info["name"].lower()] = site
        return web.json_response({"name": request.match_info["name"], "url": site["url"]})

    async def list_sites(self, request: web.Request) -> web.Response:
        value = [{"name": n, "url": s["url"]} for n, s in self.data.sites.items()]
        return web.json_response({"value": value})

    async def put_storage_account(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.data.storage_accounts[request.match_info["name"].lower()] = str(
            body["connectionString"]
        )
        return web.json_response({"name": request.match_info["name"]})

    async def list_writes(self, request: web.Request) -> web.Response:
        return web.json_response({"writes": self.data.writes})


class EventGridArmControl:
    """The control routes above, for tests and the demo (synchronous)."""

    def __init__(self, base_url: str, ca_path: str) -> None:
        from devtools.emulator.arm_client import ControlSession

        self._session = ControlSession(base_url, ca_path)

    def register_site(self, name: str, url: str, eventgrid_key: str) -> None:
        """Make ``.../Microsoft.Web/sites/{name}/functions/{fn}`` deliver to a local host."""
        self._session.call(
            "PUT", f"/control/arm/sites/{name}", {"url": url, "eventgridKey": eventgrid_key}
        )

    def register_storage_account(self, name: str, connection_string: str) -> None:
        """Make dead letters to storage account ``name`` land in Azurite."""
        self._session.call(
            "PUT", f"/control/arm/storageAccounts/{name}", {"connectionString": connection_string}
        )

    def writes(self) -> list[dict[str, str]]:
        """Every ARM request that was not a read, in order (method, path)."""
        return list(self._session.call("GET", "/control/arm/writes")["writes"])
