"""The local Functions host: HTTP front door, queue pollers, timers; see the package docstring."""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import datetime as dt
import functools
import json
import logging
import secrets
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import azure.functions as func
from aiohttp import web
from azure.core.exceptions import ResourceExistsError
from azure.storage.queue.aio import QueueClient

from devtools.localhost import bindings
from shared.settings import Ncrontab

log = logging.getLogger("keyward.localhost")

_VALIDATION_EVENT = "Microsoft.EventGrid.SubscriptionValidationEvent"
_DEFAULT_QUEUE_SETTINGS: dict[str, Any] = {
    "batchSize": 16,
    "visibilityTimeout": "00:00:00",
    "maxDequeueCount": 5,
    "maxPollingInterval": "00:00:02",
}


def _timespan_seconds(text: str) -> float:
    hours, minutes, seconds = text.split(":")
    return int(hours) * 3600 + int(minutes) * 60 + float(seconds)


@dataclass
class HostKeys:
    """The keys the real host keeps: a master key, a default function key, and the system
    key Event Grid subscriptions put in their webhook URL (``eventgrid_extension``)."""

    master: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    function: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    eventgrid: str = field(default_factory=lambda: secrets.token_urlsafe(24))


@dataclass
class InvocationRecord:
    function: str
    trigger: str
    ok: bool
    error: str = ""


class LocalFunctionsHost:
    """Runs ``function_app.app`` locally. Create, ``await start()``, ``await stop()``."""

    def __init__(
        self,
        app: func.FunctionApp | Iterable[Any],
        *,
        settings: Mapping[str, str],
        host_json: Mapping[str, Any] | None = None,
        port: int = 0,
        keys: HostKeys | None = None,
        run_timers: bool = True,
        run_queues: bool = True,
    ) -> None:
        self.functions = bindings.discover(app)
        self.settings = dict(settings)
        self.keys = keys or HostKeys()
        self.port = port
        self.invocations: list[InvocationRecord] = []
        queue_settings = dict(_DEFAULT_QUEUE_SETTINGS)
        queue_settings.update((host_json or {}).get("extensions", {}).get("queues", {}))
        self._queue_settings = queue_settings
        self._run_timers = run_timers
        self._run_queues = run_queues
        self._executor = ThreadPoolExecutor(max_workers=8, thread_name_prefix="fn")
        self._tasks: list[asyncio.Task[None]] = []
        self._runner: web.AppRunner | None = None
        self._stopping = asyncio.Event()

    # ----------------------------------------------------------------- lifecycle
    async def start(self) -> None:
        web_app = web.Application(client_max_size=64 * 1024 * 1024)
        web_app.router.add_route("*", "/runtime/webhooks/eventgrid", self._event_grid)
        web_app.router.add_post("/admin/functions/{name}", self._admin_invoke)
        web_app.router.add_get("/admin/host/status", self._host_status)
        web_app.router.add_route("*", "/api/{tail:.*}", self._http)
        self._runner = web.AppRunner(web_app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self.port)
        await site.start()
        server = site._server
        assert server is not None
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
        for spec in self.functions.values():
            if spec.trigger_type == bindings.QUEUE_TRIGGER and self._run_queues:
                self._tasks.append(asyncio.create_task(self._poll_queue(spec)))
            elif spec.trigger_type == bindings.TIMER_TRIGGER and self._run_timers:
                self._tasks.append(asyncio.create_task(self._run_timer(spec)))
        log.info(
            "local Functions host on http://127.0.0.1:%s (%d functions)",
            self.port,
            len(self.functions),
        )

    async def stop(self) -> None:
        self._stopping.set()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._runner is not None:
            await self._runner.cleanup()
        self._executor.shutdown(wait=True, cancel_futures=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def event_grid_webhook_url(self, function_name: str) -> str:
        """The URL an Event Grid subscription points at, as the real host documents it."""
        return (
            f"{self.base_url}/runtime/webhooks/eventgrid?functionName={function_name}"
            f"&code={self.keys.eventgrid}"
        )

    # ---------------------------------------------------------------- invocation
    async def invoke(
        self, spec: bindings.FunctionSpec, argument: Any, *, traceparent: str | None = None
    ) -> Any:
        """Run one invocation; a function that declares ``context`` gets one whose trace
        context is the host's for this invocation (a child of ``traceparent``, the request's,
        when the trigger brought one)."""
        kwargs = {spec.param_name: argument}
        if spec.wants_context:
            kwargs["context"] = bindings.invocation_context(spec.name, traceparent)
        try:
            if spec.is_async:
                result = await spec.user_function(**kwargs)
            else:
                loop = asyncio.get_running_loop()
                call = functools.partial(spec.user_function, **kwargs)
                result = await loop.run_in_executor(self._executor, call)
        except Exception as error:
            self.invocations.append(
                InvocationRecord(spec.name, spec.trigger_type, False, type(error).__name__)
            )
            log.warning("function %s failed: %s", spec.name, type(error).__name__)
            raise
        self.invocations.append(InvocationRecord(spec.name, spec.trigger_type, True))
        return result

    # ---------------------------------------------------------------- event grid
    async def _event_grid(self, request: web.Request) -> web.StreamResponse:
        name = request.query.get("functionName", "")
        spec = self.functions.get(name)
        if spec is None or spec.trigger_type != bindings.EVENT_GRID_TRIGGER:
            return web.json_response({"error": f"no Event Grid function {name!r}"}, status=404)
        if not secrets.compare_digest(request.query.get("code", ""), self.keys.eventgrid):
            return web.json_response({"error": "missing or wrong system key"}, status=401)
        if request.method == "OPTIONS":
            # CloudEvents 1.0 webhook abuse protection: allow the origin that asks.
            origin = request.headers.get("WebHook-Request-Origin", "")
            return web.Response(status=200, headers={"WebHook-Allowed-Origin": origin or "*"})
        if request.method != "POST":
            return web.Response(status=405)
        try:
            payload = json.loads(await request.read())
        except ValueError:
            return web.json_response({"error": "body is not JSON"}, status=400)
        events = payload if isinstance(payload, list) else [payload]
        if request.headers.get("aeg-event-type") == "SubscriptionValidation" or (
            len(events) == 1
            and isinstance(events[0], dict)
            and events[0].get("eventType") == _VALIDATION_EVENT
        ):
            code = (events[0].get("data") or {}).get("validationCode") if events else None
            if not code:
                return web.json_response({"error": "no validationCode"}, status=400)
            return web.json_response({"validationResponse": code})
        for event in events:
            if not isinstance(event, dict):
                return web.json_response({"error": "event is not an object"}, status=400)
            try:
                argument = bindings.event_grid_input(event)
            except Exception as error:
                # The real host fails such a delivery too; a 400 is not retried by Event Grid.
                return web.json_response({"error": f"undecodable event: {error}"}, status=400)
            try:
                await self.invoke(spec, argument, traceparent=request.headers.get("traceparent"))
            except Exception:
                return web.json_response({"error": "function failed"}, status=500)
        return web.Response(status=200)

    # ---------------------------------------------------------------------- http
    def _authorized(self, request: web.Request, level: str) -> bool:
        if level.lower() == "anonymous":
            return True
        supplied = request.headers.get("x-functions-key") or request.query.get("code", "")
        allowed = (
            [self.keys.master]
            if level.lower() == "admin"
            else [self.keys.master, self.keys.function]
        )
        return any(secrets.compare_digest(supplied, key) for key in allowed)

    async def _http(self, request: web.Request) -> web.StreamResponse:
        tail = request.match_info["tail"].strip("/")
        for spec in self.functions.values():
            if spec.trigger_type != bindings.HTTP_TRIGGER:
                continue
            route = str(spec.binding.get("route") or spec.name).strip("/")
            route_params = _match_route(route, tail)
            if route_params is None:
                continue
            methods = [str(m).upper() for m in spec.binding.get("methods") or []]
            if methods and request.method.upper() not in methods:
                continue
            if not self._authorized(request, str(spec.binding.get("authLevel", "function"))):
                return web.json_response({"error": "unauthorized"}, status=401)
            http_request = func.HttpRequest(
                method=request.method,
                url=str(request.url),
                headers=dict(request.headers),
                params=dict(request.query),
                route_params=route_params,
                body=await request.read(),
            )
            try:
                response = await self.invoke(
                    spec, http_request, traceparent=request.headers.get("traceparent")
                )
            except Exception:
                return web.json_response({"error": "function failed"}, status=500)
            return _to_aiohttp(response)
        return web.json_response({"error": f"no HTTP function at /api/{tail}"}, status=404)

    # ---------------------------------------------------------------------- admin
    async def _admin_invoke(self, request: web.Request) -> web.StreamResponse:
        if not self._authorized(request, "admin"):
            return web.json_response({"error": "master key required"}, status=401)
        spec = self.functions.get(request.match_info["name"])
        if spec is None:
            return web.json_response({"error": "no such function"}, status=404)
        body = await request.json() if request.can_read_body else {}
        if spec.trigger_type == bindings.TIMER_TRIGGER:
            now = dt.datetime.now(dt.UTC)
            argument = bindings.timer_input(past_due=False, last=None, next_=now)
        elif spec.trigger_type == bindings.QUEUE_TRIGGER:
            argument = bindings.queue_input(
                message_id=secrets.token_hex(16),
                body=str(body.get("input", "")),
                dequeue_count=1,
                inserted_on=None,
                expires_on=None,
                next_visible_on=None,
                pop_receipt="",
            )
        else:
            return web.json_response({"error": "only timer and queue functions"}, status=400)
        try:
            await self.invoke(spec, argument)
        except Exception as error:
            return web.json_response({"error": type(error).__name__}, status=500)
        return web.Response(status=202)

    async def _host_status(self, request: web.Request) -> web.StreamResponse:
        return web.json_response({"state": "Running", "functions": sorted(self.functions)})

    # --------------------------------------------------------------------- queues
    async def _poll_queue(self, spec: bindings.FunctionSpec) -> None:
        queue_name = bindings.resolve_setting_reference(
            str(spec.binding["queueName"]), self.settings
        )
        connection_setting = str(spec.binding.get("connection") or "AzureWebJobsStorage")
        connection = self.settings[connection_setting]
        batch = int(self._queue_settings["batchSize"])
        retry_delay = int(_timespan_seconds(str(self._queue_settings["visibilityTimeout"])))
        max_dequeue = int(self._queue_settings["maxDequeueCount"])
        max_idle = _timespan_seconds(str(self._queue_settings["maxPollingInterval"]))
        lease_seconds = 600  # the host's lease while a function runs
        async with (
            QueueClient.from_connection_string(connection, queue_name) as queue,
            QueueClient.from_connection_string(connection, f"{queue_name}-poison") as poison,
        ):
            for client in (queue, poison):
                with contextlib.suppress(ResourceExistsError):
                    await client.create_queue()
            idle = 0.1
            while not self._stopping.is_set():
                messages = [
                    m
                    async for m in queue.receive_messages(
                        messages_per_page=batch,
                        max_messages=batch,
                        visibility_timeout=lease_seconds,
                    )
                ]
                if not messages:
                    await asyncio.sleep(idle)
                    idle = min(max_idle, idle * 2)
                    continue
                idle = 0.1
                await asyncio.gather(
                    *(
                        self._handle_message(spec, queue, poison, m, retry_delay, max_dequeue)
                        for m in messages
                    )
                )

    async def _handle_message(
        self,
        spec: bindings.FunctionSpec,
        queue: QueueClient,
        poison: QueueClient,
        message: Any,
        retry_delay: int,
        max_dequeue: int,
    ) -> None:
        try:
            body = base64.b64decode(message.content, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError, ValueError):
            body = None
        ok = False
        if body is not None:
            argument = bindings.queue_input(
                message_id=message.id,
                body=body,
                dequeue_count=message.dequeue_count,
                inserted_on=message.inserted_on,
                expires_on=message.expires_on,
                next_visible_on=message.next_visible_on,
                pop_receipt=message.pop_receipt or "",
            )
            try:
                await self.invoke(spec, argument)
                ok = True
            except Exception:
                ok = False
        if ok:
            await queue.delete_message(message)
        elif body is None or message.dequeue_count >= max_dequeue:
            await poison.send_message(message.content)
            await queue.delete_message(message)
            log.warning("message %s moved to %s-poison", message.id, queue.queue_name)
        else:
            await queue.update_message(message, visibility_timeout=retry_delay)

    # --------------------------------------------------------------------- timers
    async def _run_timer(self, spec: bindings.FunctionSpec) -> None:
        expression = bindings.resolve_setting_reference(
            str(spec.binding["schedule"]), self.settings
        )
        schedule = Ncrontab.parse(expression)
        last: dt.datetime | None = None
        while not self._stopping.is_set():
            now = dt.datetime.now(dt.UTC)
            due = schedule.next_after(now)
            await asyncio.sleep((due - now).total_seconds())
            argument = bindings.timer_input(
                past_due=False, last=last, next_=schedule.next_after(due)
            )
            last = due
            try:
                await self.invoke(spec, argument)
            except Exception:
                log.warning("timer %s failed; next run at its schedule", spec.name)


def _match_route(template: str, path: str) -> dict[str, str] | None:
    template_parts = [p for p in template.split("/") if p]
    path_parts = [p for p in path.split("/") if p]
    if len(template_parts) != len(path_parts):
        return None
    params: dict[str, str] = {}
    for expected, actual in zip(template_parts, path_parts, strict=False):
        if expected.startswith("{") and expected.endswith("}"):
            params[expected[1:-1].split(":")[0].rstrip("?")] = actual
        elif expected.lower() != actual.lower():
            return None
    return params


def _to_aiohttp(response: func.HttpResponse) -> web.Response:
    headers = {k: v for k, v in response.headers.items() if k.lower() != "content-type"}
    return web.Response(
        status=response.status_code,
        body=response.get_body(),
        headers=headers,
        content_type=response.mimetype or "text/plain",
        charset=response.charset if response.mimetype and "json" not in response.mimetype else None,
    )


def load_local_settings(path: Path) -> dict[str, str]:
    """``local.settings.json`` Values, as ``func start`` reads them."""
    if not path.exists():
        return {}
    data = json.loads(path.read_text())
    return {str(k): str(v) for k, v in (data.get("Values") or {}).items()}
