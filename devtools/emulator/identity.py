"""An App Service managed identity endpoint, so the app's own DefaultAzureCredential works.

Azure Functions on App Service gets tokens from a local endpoint named by the environment:
``IDENTITY_ENDPOINT`` (plain http on the host) and ``IDENTITY_HEADER`` (a secret the caller
echoes in ``X-IDENTITY-HEADER``); azure-identity's ``ManagedIdentityCredential`` calls
``GET {IDENTITY_ENDPOINT}?api-version=2019-08-01&resource=...[&client_id=...]``. Serving the
same contract here means keyward runs against the emulator with its production credential
code, unchanged: no test-only credential path exists in the app.

Without ``client_id`` the token names the "system-assigned" principal configured for the
endpoint; with one, the principal whose ``client_id`` matches (a user-assigned identity,
``AZURE_CLIENT_ID``).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field

from aiohttp import web

from devtools.emulator.auth import mint_token
from devtools.emulator.state import EmulatorState

API_VERSION = "2019-08-01"
TOKEN_LIFETIME_SECONDS = 3600


@dataclass
class ManagedIdentityEndpoint:
    """Serves tokens for ``system_object_id`` (or a user-assigned principal by client id)."""

    state: EmulatorState
    system_object_id: str
    secret: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    requests: int = 0
    _runner: web.AppRunner | None = None
    url: str = ""

    async def start(self, port: int = 0) -> str:
        app = web.Application()
        app.router.add_get("/msi/token", self._token)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", port)
        await site.start()
        server = site._server
        assert server is not None
        bound = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
        self.url = f"http://127.0.0.1:{bound}/msi/token"
        return self.url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def environment(self) -> dict[str, str]:
        """The variables App Service sets for a function app with a managed identity."""
        return {"IDENTITY_ENDPOINT": self.url, "IDENTITY_HEADER": self.secret}

    async def _token(self, request: web.Request) -> web.Response:
        self.requests += 1
        if not secrets.compare_digest(request.headers.get("X-IDENTITY-HEADER", ""), self.secret):
            return web.json_response(
                {"error": "invalid_request", "error_description": "X-IDENTITY-HEADER missing"},
                status=400,
            )
        if request.query.get("api-version") != API_VERSION:
            return web.json_response(
                {"error": "invalid_request", "error_description": "unsupported api-version"},
                status=400,
            )
        resource = request.query.get("resource", "")
        if not resource:
            return web.json_response(
                {"error": "invalid_request", "error_description": "resource is required"},
                status=400,
            )
        object_id = self.system_object_id
        client_id = request.query.get("client_id")
        if client_id:
            matches = [p for p in self.state.principals.values() if p.client_id == client_id]
            if not matches:
                return web.json_response(
                    {"error": "invalid_request", "error_description": "identity not found"},
                    status=400,
                )
            object_id = matches[0].object_id
        token, expires = mint_token(
            object_id, resource.rstrip("/"), lifetime_seconds=TOKEN_LIFETIME_SECONDS
        )
        return web.json_response(
            {
                "access_token": token,
                "expires_on": str(expires),
                "resource": resource,
                "token_type": "Bearer",
                "client_id": client_id or object_id,
            }
        )
