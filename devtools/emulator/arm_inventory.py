"""The emulator's inventory surface: storage accounts, Resource Graph, and ARM request counts.

``register_inventory`` is called once by ``arm.register_routes``. It adds the
``Microsoft.Storage/storageAccounts`` provider (``arm_storage``), the Resource Graph query
(``arm_resourcegraph``) over Cognitive Services and storage accounts, a counter of every ARM
request by route (so tests and benchmarks can count what an inventory costs), and their
control routes::

    PUT    /control/arm/storage/{name}     seed a storage account (body: ARM's, plus
                                           subscriptionId / resourceGroup; no event)
    GET    /control/arm/storage
    DELETE /control/arm/storage/{name}
    PUT    /control/arm/storage/{name}/current-version
                                           Azure Storage "moving" an account that follows
                                           the latest: {"version": "<v>"}, {} (the key's
                                           newest now) or {"version": ""} (unknown: ARM's
                                           currentVersionedKeyIdentifier is left out)
    GET|PUT /control/arm/resourcegraph     {"refuse": false, "unreadable": [subscription...],
                                           "fault": "" (arm_resourcegraph.FAULTS)}
    GET    /control/arm/requests           {"total": n, "byRoute": {"GET Microsoft.X/y": n}}
    DELETE /control/arm/requests           reset the counts

A route is ``METHOD namespace/type`` for a listing or a provider action and
``METHOD namespace/type/{name}`` for one resource (deeper paths keep their last type), so
``POST Microsoft.ResourceGraph/resources`` counts queries and ``GET
Microsoft.CognitiveServices/accounts`` counts per-subscription listings.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from devtools.emulator.arm_cognitive import AccountsProvider
from devtools.emulator.arm_common import ArmError, Dispatcher
from devtools.emulator.arm_resourcegraph import FAULTS, ResourceGraphProvider
from devtools.emulator.arm_storage import StorageAccountsProvider
from devtools.emulator.state import EmulatorState

#: Prefix of the ARM request counters in ``state.counters``.
COUNTER_PREFIX = "arm:"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def route_label(method: str, path: str) -> str:
    """``GET Microsoft.Storage/storageAccounts`` (listing) or ``.../{name}`` (one resource)."""
    parts = [p for p in path.split("/") if p]
    lowered = [p.lower() for p in parts]
    if "providers" not in lowered:
        return f"{method} {'/'.join(parts[:1] + ['{id}'] * (len(parts) > 1))}"
    at = len(lowered) - 1 - lowered[::-1].index("providers")
    tail = parts[at + 1 :]
    if len(tail) < 2:
        return f"{method} {'/'.join(tail)}"
    label = f"{tail[0]}/{tail[1]}"
    rest = tail[2:]
    while len(rest) >= 2:  # name, then a child type (and its name)
        label += "/{name}/" + rest[1]
        rest = rest[2:]
    if rest:
        label += "/{name}"
    return f"{method} {label}"


def register_inventory(
    app: web.Application,
    dispatcher: Dispatcher,
    state: EmulatorState,
    accounts: AccountsProvider,
) -> StorageAccountsProvider:
    """Add the storage provider, Resource Graph, the counters and their control routes."""
    storage = StorageAccountsProvider(state, accounts)
    storage.register(dispatcher)
    graph = ResourceGraphProvider(
        [
            lambda: [accounts.to_json(a) for a in state.accounts.values()],
            lambda: [storage.to_json(a) for a in storage.accounts.values()],
        ]
    )
    graph.register(dispatcher)

    @web.middleware
    async def count(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path.startswith(("/subscriptions/", "/providers/")):
            state.counters.bump(COUNTER_PREFIX + route_label(request.method, request.path))
        return await handler(request)

    app.middlewares.append(count)
    _Control(state, storage, graph).register(app)
    return storage


class _Control:
    def __init__(
        self, state: EmulatorState, storage: StorageAccountsProvider, graph: ResourceGraphProvider
    ) -> None:
        self.state = state
        self.storage = storage
        self.graph = graph

    def register(self, app: web.Application) -> None:
        router = app.router
        router.add_get("/control/arm/storage", self.list_storage)
        router.add_put("/control/arm/storage/{name}", self.seed_storage)
        router.add_delete("/control/arm/storage/{name}", self.delete_storage)
        router.add_put("/control/arm/storage/{name}/current-version", self.move_storage)
        router.add_get("/control/arm/resourcegraph", self.get_graph)
        router.add_put("/control/arm/resourcegraph", self.put_graph)
        router.add_get("/control/arm/requests", self.requests)
        router.add_delete("/control/arm/requests", self.reset_requests)

    async def list_storage(self, request: web.Request) -> web.Response:
        value = [self.storage.to_json(a) for a in self.storage.accounts.values()]
        return web.json_response({"value": value})

    async def seed_storage(self, request: web.Request) -> web.Response:
        try:
            body: dict[str, Any] = await request.json() if request.can_read_body else {}
            account = self.storage.seed(request.match_info["name"], body)
        except json.JSONDecodeError as error:
            return _error(400, str(error))
        except ArmError as error:
            return _error(error.status, error.message)
        return web.json_response(self.storage.to_json(account), status=201)

    async def move_storage(self, request: web.Request) -> web.Response:
        account = self.storage.accounts.get(request.match_info["name"].lower())
        if account is None:
            return _error(404, f"no storage account {request.match_info['name']!r}")
        try:
            body: dict[str, Any] = await request.json() if request.can_read_body else {}
            version = body.get("version")
            self.storage.move(account, None if version is None else str(version).lower())
        except json.JSONDecodeError as error:
            return _error(400, str(error))
        except ArmError as error:
            return _error(error.status, error.message)
        self.state.changed()
        return web.json_response(self.storage.to_json(account))

    async def delete_storage(self, request: web.Request) -> web.Response:
        removed = self.storage.accounts.pop(request.match_info["name"].lower(), None)
        if removed is not None:
            self.state.changed()
        return web.Response(status=200 if removed else 204)

    def _graph_settings(self) -> dict[str, Any]:
        settings = self.graph.settings
        return {
            "refuse": settings.refuse,
            "unreadable": sorted(settings.unreadable),
            "fault": settings.fault,
        }

    async def get_graph(self, request: web.Request) -> web.Response:
        return web.json_response(self._graph_settings())

    async def put_graph(self, request: web.Request) -> web.Response:
        body = await request.json() if request.can_read_body else {}
        if "refuse" in body:
            self.graph.settings.refuse = bool(body["refuse"])
        if "fault" in body:
            if body["fault"] not in FAULTS:
                return _error(400, f"fault must be one of {FAULTS}")
            self.graph.settings.fault = str(body["fault"])
        if "unreadable" in body:
            self.graph.settings.unreadable = {str(s).lower() for s in body["unreadable"] or []}
        return web.json_response(self._graph_settings())

    async def requests(self, request: web.Request) -> web.Response:
        counts = {
            label[len(COUNTER_PREFIX) :]: n
            for label, n in self.state.counters.requests.items()
            if label.startswith(COUNTER_PREFIX)
        }
        return web.json_response({"total": sum(counts.values()), "byRoute": counts})

    async def reset_requests(self, request: web.Request) -> web.Response:
        for label in [k for k in self.state.counters.requests if k.startswith(COUNTER_PREFIX)]:
            del self.state.counters.requests[label]
        return web.Response(status=204)


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": {"code": "BadRequest", "message": message}}, status=status)
