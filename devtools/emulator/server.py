"""The emulator process: one asyncio loop, a main HTTPS port, and one HTTPS port per vault.

Why a port per vault: the SDKs address a vault by its URL's origin, and names under
``*.localhost`` do not resolve on this machine, so ``https://127.0.0.1:PORT`` is the one shape
of distinct vault origins every client accepts without DNS or host-file tricks. Ports are bound
synchronously (``state.add_vault`` returns with ``vault.port`` set) and served by one shared
aiohttp application that tells vaults apart by the local port of the connection.

The main port carries the control API (``/control/...``), the ARM surface (``arm.py``) and
Event Grid (``eventgrid.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import ssl
from pathlib import Path
from typing import Any

from aiohttp import web

from devtools.emulator import arm, control, entra, eventgrid, lifecycle, tls
from devtools.emulator.identity import ManagedIdentityEndpoint
from devtools.emulator.keyvault import DataPlane
from devtools.emulator.state import EmulatorState, Principal, Vault

#: The object id of the function app's system-assigned identity in the emulator.
APP_IDENTITY_OBJECT_ID = "6b0f1e1d-4e0a-4c5a-9b7e-000000ca11ed"

log = logging.getLogger("keyward.emulator")

HOST = "127.0.0.1"
TICK_SECONDS = 1.0
_SAVE_DELAY_SECONDS = 0.25


def _bind(port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((HOST, port))
    except OSError:
        sock.close()
        raise
    sock.listen(1024)
    sock.setblocking(False)
    return sock


class EmulatorServer:
    """Owns the state, the TLS material, the sites, and the background tick."""

    def __init__(
        self,
        state: EmulatorState,
        *,
        port: int,
        tls_dir: Path,
        state_file: Path | None = None,
    ) -> None:
        self.state = state
        self.port = port
        self.tls_dir = tls_dir
        self.state_file = state_file
        self.data_plane = DataPlane(state)
        self._ssl: ssl.SSLContext | None = None
        self._tls: tls.TlsMaterial | None = None
        self._main_runner: web.AppRunner | None = None
        self._vault_runner: web.AppRunner | None = None
        self._vault_sites: dict[str, tuple[web.SockSite, socket.socket]] = {}
        self._pending: set[asyncio.Task[Any]] = set()
        self._tick_task: asyncio.Task[None] | None = None
        self._save_handle: asyncio.TimerHandle | None = None
        self.identity: ManagedIdentityEndpoint | None = None

    @property
    def url(self) -> str:
        return f"https://{HOST}:{self.port}"

    @property
    def ca_path(self) -> Path:
        assert self._tls is not None
        return self._tls.ca_path

    async def start(self) -> None:
        self._tls = tls.generate(self.tls_dir)
        self._ssl = self._tls.server_context()

        main = web.Application(client_max_size=4 * 1024 * 1024)
        control.register_routes(main, self)
        arm.register_routes(main, self.state)
        entra.register_routes(main, self)
        self.state.events = eventgrid.attach(main, self.state)
        self._main_runner = web.AppRunner(main, access_log=None)
        await self._main_runner.setup()
        main_sock = _bind(self.port)
        self.port = main_sock.getsockname()[1]
        await web.SockSite(self._main_runner, main_sock, ssl_context=self._ssl).start()

        self._vault_runner = web.AppRunner(self.data_plane.build_app(), access_log=None)
        await self._vault_runner.setup()
        self.state.vault_listener = self.serve_vault
        self.state.vault_remover = self.drop_vault
        for vault in list(self.state.vaults.values()):
            self.serve_vault(vault)
        self.state.on_change = self._changed
        self._tick_task = asyncio.create_task(self._tick_loop())
        # The function app's own managed identity (App Service contract), so keyward runs
        # here with DefaultAzureCredential unchanged.
        app_principal = self.state.principals.get(APP_IDENTITY_OBJECT_ID)
        if app_principal is None:
            app_principal = Principal(APP_IDENTITY_OBJECT_ID, display_name="keyward-function-app")
            self.state.principals[APP_IDENTITY_OBJECT_ID] = app_principal
        self.identity = ManagedIdentityEndpoint(self.state, APP_IDENTITY_OBJECT_ID)
        await self.identity.start()

    def serve_vault(self, vault: Vault) -> None:
        """Bind ``vault`` a port now (reusing ``vault.port`` when free) and start serving it."""
        if vault.name in self._vault_sites:
            return
        assert self._vault_runner is not None
        sock: socket.socket | None = None
        if vault.port:
            with contextlib.suppress(OSError):
                sock = _bind(vault.port)
        if sock is None:
            sock = _bind(0)
        vault.port = sock.getsockname()[1]
        self.data_plane.port_to_vault[vault.port] = vault.name
        site = web.SockSite(self._vault_runner, sock, ssl_context=self._ssl)
        self._vault_sites[vault.name] = (site, sock)
        self._spawn(site.start())

    async def drop_vault(self, name: str) -> None:
        """Stop serving a vault's port and remove the vault (what deleting a vault does)."""
        vault = self.state.vaults.pop(name, None)
        if vault is not None:
            for key in [*vault.keys.values(), *vault.deleted_keys.values()]:
                for version in key.versions:
                    self.data_plane.cache.forget(version.version)
        await self._stop_site(name)
        self._changed()

    async def _stop_site(self, name: str) -> None:
        await self._close_site(self._detach_site(name))

    def _detach_site(self, name: str) -> tuple[web.SockSite, socket.socket] | None:
        """Forget a vault's site at once (so the name can be served again right away)."""
        self.data_plane.runtimes.pop(name, None)
        self.data_plane.port_to_vault = {
            p: v for p, v in self.data_plane.port_to_vault.items() if v != name
        }
        return self._vault_sites.pop(name, None)

    @staticmethod
    async def _close_site(entry: tuple[web.SockSite, socket.socket] | None) -> None:
        """Stop the listening site first, then close its socket: closing a socket the event
        loop still watches would leave a stale selector entry for the next socket with that
        file descriptor number."""
        if entry is None:
            return
        site, sock = entry
        with contextlib.suppress(RuntimeError):  # a site whose start had not run yet
            await site.stop()
        sock.close()

    def _reconcile(self) -> None:
        """Serve vaults another surface put straight into ``state.vaults``; stop the sites of
        vaults removed from it."""
        for vault in list(self.state.vaults.values()):
            if vault.name not in self._vault_sites:
                self.serve_vault(vault)
        for name in list(self._vault_sites):
            if name not in self.state.vaults:
                self._spawn(self._close_site(self._detach_site(name)))

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    def _changed(self) -> None:
        self._reconcile()
        if self.state_file is None:
            return
        if self._save_handle is None:
            loop = asyncio.get_running_loop()
            self._save_handle = loop.call_later(_SAVE_DELAY_SECONDS, self.save)

    def save(self) -> None:
        """Write the state file atomically (temp file, then rename)."""
        self._save_handle = None
        if self.state_file is None:
            return
        self.state_file.parent.mkdir(parents=True, exist_ok=True)
        temp = self.state_file.with_suffix(self.state_file.suffix + ".tmp")
        temp.write_text(json.dumps(self.state.to_json()))
        os.replace(temp, self.state_file)

    async def tick(self) -> None:
        await lifecycle.tick(self.state, self.data_plane.rotate_key)

    async def _tick_loop(self) -> None:
        while True:
            await asyncio.sleep(TICK_SECONDS)
            try:
                await self.tick()
            except Exception:
                log.exception("lifecycle tick failed")

    async def stop(self) -> None:
        if self._tick_task is not None:
            self._tick_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._tick_task
        if self._save_handle is not None:
            self._save_handle.cancel()
            self.save()
        for name in list(self._vault_sites):
            await self._stop_site(name)
        if self._vault_runner is not None:
            await self._vault_runner.cleanup()
        if self._main_runner is not None:
            await self._main_runner.cleanup()
        if self.identity is not None:
            await self.identity.stop()

    def ready_info(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "port": self.port,
            "ca_path": str(self.ca_path),
            "pid": os.getpid(),
            "identity": {
                **(self.identity.environment if self.identity else {}),
                "object_id": APP_IDENTITY_OBJECT_ID,
            },
        }


def load_state(path: Path | None) -> EmulatorState:
    if path is not None and path.exists():
        return EmulatorState.from_json(json.loads(path.read_text()))
    return EmulatorState()
