"""A recording webhook for tests: what Event Grid delivered, answered the way a test wants.

It runs its own event loop in a thread so synchronous tests (and the synchronous SDKs they
drive) can use it without blocking the emulator. It answers both handshakes like the Azure
Functions host does, unless told not to, and can fail, stall or refuse on a script::

    with RecordingWebhook(statuses=[503, 503]) as hook:   # two failures, then 200s
        grid.subscribe("s", topic=vault_id, endpoint=hook.url)
        ...
        hook.wait_for(1)
        events = [EventGridEvent.from_dict(e) for e in hook.notifications()[0].json]
"""

from __future__ import annotations

import asyncio
import json
import ssl
import threading
import time
from collections.abc import Awaitable
from dataclasses import dataclass
from types import TracebackType
from typing import Any, TypeVar

from aiohttp import web

T = TypeVar("T")


class BackgroundLoop:
    """An asyncio loop in a daemon thread; ``run`` executes a coroutine there and waits."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()

    def run(self, coroutine: Awaitable[T], timeout: float = 30.0) -> T:
        async def _wrap() -> T:
            return await coroutine

        return asyncio.run_coroutine_threadsafe(_wrap(), self.loop).result(timeout)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=5)
        if not self._thread.is_alive():
            self.loop.close()


async def start_site(
    app: web.Application, ssl_context: Any = None, port: int = 0
) -> tuple[web.AppRunner, int]:
    """Serve ``app`` on 127.0.0.1 (``port`` 0 picks a free one); returns (runner, port)."""
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port, ssl_context=ssl_context)
    await site.start()
    server = site._server
    assert server is not None
    sockets = getattr(server, "sockets", None) or []
    return runner, int(sockets[0].getsockname()[1])


@dataclass
class Received:
    """One request the webhook got."""

    method: str
    headers: dict[str, str]
    body: bytes
    at: float

    @property
    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def event_type(self) -> str:
        return self.headers.get("aeg-event-type", "")


class RecordingWebhook:
    """A webhook on ``http(s)://127.0.0.1:<port>/hook`` recording every request.

    Args:
        statuses: answers for successive notification POSTs; 200 once exhausted.
        delay: seconds to wait before answering a notification (to hit the timeout).
        answer_validation: echo ``validationCode`` for the Event Grid schema handshake;
            False answers 200 without it (manual validation), None answers 400.
        allowed_origin: the ``WebHook-Allowed-Origin`` answer to the CloudEvents OPTIONS
            (None: no header, the handshake fails).
        ssl_context: serve https with it (the emulator must trust its CA:
            ``EventGridControl.configure(webhook_ca_files=[...])``).
    """

    def __init__(
        self,
        *,
        statuses: list[int] | None = None,
        delay: float = 0.0,
        answer_validation: bool | None = True,
        allowed_origin: str | None = "eventgrid.azure.net",
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.statuses = list(statuses or [])
        self.delay = delay
        self.answer_validation = answer_validation
        self.allowed_origin = allowed_origin
        self.requests: list[Received] = []
        self._lock = threading.Lock()
        self._background = BackgroundLoop()
        app = web.Application()
        app.router.add_route("*", "/hook", self._handle)
        self._scheme = "https" if ssl_context is not None else "http"
        self._runner, self.port = self._background.run(start_site(app, ssl_context))

    @property
    def url(self) -> str:
        return f"{self._scheme}://127.0.0.1:{self.port}/hook"

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        received = Received(request.method, dict(request.headers), body, time.time())
        with self._lock:
            self.requests.append(received)
        if request.method == "OPTIONS":
            headers = {}
            if self.allowed_origin is not None:
                headers["WebHook-Allowed-Origin"] = self.allowed_origin
            return web.Response(status=200, headers=headers)
        if received.event_type == "SubscriptionValidation":
            if self.answer_validation is None:
                return web.Response(status=400)
            if not self.answer_validation:
                return web.Response(status=200)
            code = received.json[0]["data"]["validationCode"]
            return web.json_response({"validationResponse": code})
        with self._lock:
            status = self.statuses.pop(0) if self.statuses else 200
        if self.delay:
            await asyncio.sleep(self.delay)
        return web.Response(status=status)

    def notifications(self) -> list[Received]:
        """The event deliveries (not handshakes), in arrival order."""
        with self._lock:
            return [r for r in self.requests if r.event_type == "Notification"]

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Received]:
        """Block until ``count`` notifications arrived; returns them (raises on timeout)."""
        deadline = time.monotonic() + timeout
        while True:
            got = self.notifications()
            if len(got) >= count:
                return got
            if time.monotonic() >= deadline:
                raise TimeoutError(f"{len(got)} of {count} deliveries after {timeout} s")
            time.sleep(0.01)

    def close(self) -> None:
        self._background.run(self._runner.cleanup())
        self._background.stop()

    def __enter__(self) -> RecordingWebhook:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
