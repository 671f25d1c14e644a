"""ARM surface of the emulator (Microsoft.KeyVault vaults, role assignments, Cognitive
Services accounts). Filled in by the ARM work; the server calls ``register_routes``."""

from __future__ import annotations

from aiohttp import web

from devtools.emulator.state import EmulatorState


def register_routes(app: web.Application, state: EmulatorState) -> None:
    """Add the ARM routes (served on the emulator's main port) to ``app``."""
    del app, state
