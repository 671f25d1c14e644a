"""ARM surface of the emulator (Microsoft.KeyVault vaults, role assignments, Cognitive
Services accounts), reachable by the management SDKs through ``base_url``.

The server calls :func:`register_routes` once; everything under ``/subscriptions/`` on the
main port is ARM (see ``arm_common.Dispatcher``), the providers live in ``arm_keyvault``,
``arm_authorization``, ``arm_roles`` and ``arm_cognitive``. Control routes for tests and the demo::

    PUT    /control/arm/accounts/{name}   seed a Cognitive Services account (no LRO, no events)
    GET    /control/arm/accounts
    DELETE /control/arm/accounts/{name}
    GET|PUT /control/arm/settings         {"operationSeconds": 0.0, "retryAfter": "1" | null,
                                           "nextLinkOrigin": null | "https://host:port"}
                                          (nextLinkOrigin: fault injection, see docs/emulator.md)

Storage accounts, Resource Graph and the ARM request counters: ``arm_inventory``.
``arm_client.py`` wraps them (``ArmControl``) and gives the SDK keyword arguments.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from devtools.emulator import arm_eventgrid
from devtools.emulator.arm_access import AccessControl, DenyAssignmentsProvider
from devtools.emulator.arm_authorization import RoleAssignmentsProvider
from devtools.emulator.arm_cognitive import AccountsProvider
from devtools.emulator.arm_common import ArmError, Dispatcher
from devtools.emulator.arm_inventory import register_inventory
from devtools.emulator.arm_keyvault import VaultsProvider
from devtools.emulator.arm_roles import RoleDefinitionsProvider
from devtools.emulator.state import (
    DEFAULT_LOCATION,
    DEFAULT_RESOURCE_GROUP,
    DEFAULT_SUBSCRIPTION_ID,
    CognitiveAccount,
    EmulatorState,
)


def register_routes(app: web.Application, state: EmulatorState) -> None:
    """Add the ARM routes (served on the emulator's main port) to ``app``."""
    dispatcher = Dispatcher(state)
    vaults = VaultsProvider(state)
    assignments = RoleAssignmentsProvider(state)
    accounts = AccountsProvider(state)
    vaults.register(dispatcher)
    assignments.register(dispatcher)
    accounts.register(dispatcher)
    RoleDefinitionsProvider(state).register(dispatcher)
    DenyAssignmentsProvider(state).register(dispatcher)
    app.router.add_route("*", "/subscriptions/{tail:.*}", dispatcher.handle)
    # Tenant-level ids (``/providers/Microsoft.Authorization/roleDefinitions/{guid}``).
    app.router.add_route("*", "/providers/{tail:.*}", dispatcher.handle)
    # Storage accounts, Resource Graph and ARM request counts (``arm_inventory``).
    register_inventory(app, dispatcher, state, accounts)
    _Control(state, accounts).register(app)
    AccessControl(state, vaults).register(app)
    # Microsoft.EventGrid system topics and event subscriptions (arm_eventgrid.py).
    arm_eventgrid.register(app, state, dispatcher, accounts.settings)


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": {"code": "BadRequest", "message": message}}, status=status)


class _Control:
    def __init__(self, state: EmulatorState, accounts: AccountsProvider) -> None:
        self.state = state
        self.accounts = accounts

    def register(self, app: web.Application) -> None:
        router = app.router
        router.add_get("/control/arm/accounts", self.list_accounts)
        router.add_put("/control/arm/accounts/{name}", self.seed_account)
        router.add_delete("/control/arm/accounts/{name}", self.delete_account)
        router.add_get("/control/arm/settings", self.get_settings)
        router.add_put("/control/arm/settings", self.put_settings)

    async def list_accounts(self, request: web.Request) -> web.Response:
        value = [self.accounts.to_json(a) for a in self.state.accounts.values()]
        return web.json_response({"value": value})

    async def seed_account(self, request: web.Request) -> web.Response:
        """Create or overwrite an account directly: test setup, so no operation, no event."""
        name = request.match_info["name"]
        try:
            body: dict[str, Any] = await request.json() if request.can_read_body else {}
        except json.JSONDecodeError as error:
            return _error(400, str(error))
        sku = body.get("sku") or {}
        account = CognitiveAccount(
            name=name,
            kind=str(body.get("kind") or "Face"),
            sku=str(sku.get("name") if isinstance(sku, dict) else sku) or "S0",
            subscription_id=str(body.get("subscriptionId") or DEFAULT_SUBSCRIPTION_ID),
            resource_group=str(body.get("resourceGroup") or DEFAULT_RESOURCE_GROUP),
            location=str(body.get("location") or DEFAULT_LOCATION),
        )
        previous = self.state.accounts.get(name)
        if previous is not None and previous.arm_id.lower() == account.arm_id.lower():
            account.identity = previous.identity  # keep the system identity's principal
        self.accounts.extras.pop(account.arm_id.lower(), None)
        try:
            self.accounts.apply(account, {**body, "kind": account.kind}, full=True)
        except ArmError as error:
            return _error(error.status, error.message)
        account.provisioning_state = "Succeeded"
        self.state.accounts[name] = account
        self.state.changed()
        return web.json_response(self.accounts.to_json(account), status=201)

    async def delete_account(self, request: web.Request) -> web.Response:
        removed = self.state.accounts.pop(request.match_info["name"], None)
        if removed is not None:
            self.state.changed()
        return web.Response(status=200 if removed else 204)

    def _settings(self) -> dict[str, Any]:
        settings = self.accounts.settings
        return {
            "operationSeconds": settings.operation_seconds,
            "retryAfter": settings.retry_after,
            "nextLinkOrigin": settings.next_link_origin,
        }

    async def get_settings(self, request: web.Request) -> web.Response:
        return web.json_response(self._settings())

    async def put_settings(self, request: web.Request) -> web.Response:
        body = await request.json() if request.can_read_body else {}
        settings = self.accounts.settings
        if "operationSeconds" in body:
            settings.operation_seconds = float(body["operationSeconds"])
        if "retryAfter" in body:
            value = body["retryAfter"]
            settings.retry_after = None if value is None else str(value)
        if "nextLinkOrigin" in body:
            value = body["nextLinkOrigin"]
            settings.next_link_origin = str(value) if value else None
        return web.json_response(self._settings())
