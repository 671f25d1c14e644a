"""Event Grid delivery of the emulator. Filled in by the Event Grid work; the server calls
``attach`` once at start and stores the returned publisher in ``state.events``."""

from __future__ import annotations

from aiohttp import web

from devtools.emulator.state import EmulatorState, EventPublisher, _NoEvents


def attach(app: web.Application, state: EmulatorState) -> EventPublisher:
    """Add Event Grid routes (control, custom-topic sink) to ``app``; return the publisher."""
    return _NoEvents()
