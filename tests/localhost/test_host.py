"""The local host drives functions the way the Functions host does, through the real
azure.functions converters: Event Grid handshake and delivery, HTTP keys, admin invoke."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import azure.functions as func
import pytest

from devtools.localhost.host import LocalFunctionsHost

RECEIVED: list[Any] = []


def _make_app() -> func.FunctionApp:
    app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)

    @app.function_name("on_event")
    @app.event_grid_trigger(arg_name="event")
    def on_event(event: func.EventGridEvent) -> None:
        if event.subject == "explode":
            raise RuntimeError("boom")
        RECEIVED.append(event)

    @app.function_name("on_cloud_event")
    @app.event_grid_trigger(arg_name="event")
    async def on_cloud_event(event: func.EventGridEvent) -> None:
        RECEIVED.append(event)

    @app.function_name("echo")
    @app.route(route="echo/{name}", methods=["POST"])
    def echo(req: func.HttpRequest) -> func.HttpResponse:
        body = {"name": req.route_params["name"], "got": req.get_json()}
        return func.HttpResponse(json.dumps(body), mimetype="application/json")

    @app.function_name("tick")
    @app.timer_trigger(arg_name="timer", schedule="0 0 0 1 1 *")
    def tick(timer: func.TimerRequest) -> None:
        RECEIVED.append(timer)

    return app


@pytest.fixture
async def host() -> AsyncIterator[LocalFunctionsHost]:
    RECEIVED.clear()
    local = LocalFunctionsHost(_make_app(), settings={}, run_timers=False, run_queues=False)
    await local.start()
    try:
        yield local
    finally:
        await local.stop()


def _event(subject: str = "key1") -> dict[str, Any]:
    return {
        "id": "e1",
        "topic": "/subscriptions/x/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/kv",
        "subject": subject,
        "eventType": "Microsoft.KeyVault.KeyNewVersionCreated",
        "eventTime": "2026-11-29T02:41:17.1234567Z",
        "data": {"Id": "https://kv.vault.azure.net/keys/key1/" + "a" * 32},
        "dataVersion": "1",
        "metadataVersion": "1",
    }


async def test_subscription_validation_handshake(host: LocalFunctionsHost) -> None:
    validation = [{
        "id": "v1", "topic": "t", "subject": "", "eventTime": "2026-11-29T00:00:00Z",
        "eventType": "Microsoft.EventGrid.SubscriptionValidationEvent",
        "data": {"validationCode": "512d38b6-c7b8-40c8-89fe-f46f9e9622b6"},
        "dataVersion": "2", "metadataVersion": "1",
    }]  # fmt: skip
    async with aiohttp.ClientSession() as session:
        response = await session.post(
            host.event_grid_webhook_url("on_event"),
            json=validation,
            headers={"aeg-event-type": "SubscriptionValidation"},
        )
        assert response.status == 200
        assert await response.json() == {
            "validationResponse": "512d38b6-c7b8-40c8-89fe-f46f9e9622b6"
        }
    assert RECEIVED == []


async def test_event_reaches_the_function_as_an_event_grid_event(host: LocalFunctionsHost) -> None:
    async with aiohttp.ClientSession() as session:
        response = await session.post(
            host.event_grid_webhook_url("on_event"),
            json=[_event()],
            headers={"aeg-event-type": "Notification"},
        )
        assert response.status == 200
    (event,) = RECEIVED
    assert isinstance(event, func.EventGridEvent)
    assert event.event_type == "Microsoft.KeyVault.KeyNewVersionCreated"
    assert event.get_json()["Id"].endswith("a" * 32)
    assert event.event_time is not None
    assert event.event_time.microsecond == 123456


async def test_cloud_events_abuse_protection_and_delivery(host: LocalFunctionsHost) -> None:
    url = host.event_grid_webhook_url("on_cloud_event")
    cloud_event = {
        "specversion": "1.0", "id": "c1", "type": "Microsoft.KeyVault.KeyNewVersionCreated",
        "source": "/subscriptions/x/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/kv",
        "subject": "key1", "time": "2026-11-29T02:41:17Z", "data": {"Id": "x"},
    }  # fmt: skip
    async with aiohttp.ClientSession() as session:
        options = await session.options(
            url, headers={"WebHook-Request-Origin": "eventgrid.azure.net"}
        )
        assert options.status == 200
        assert options.headers["WebHook-Allowed-Origin"] == "eventgrid.azure.net"
        response = await session.post(
            url, data=json.dumps(cloud_event),
            headers={"content-type": "application/cloudevents+json; charset=utf-8"},
        )  # fmt: skip
        assert response.status == 200
    (event,) = RECEIVED
    assert isinstance(event, func.CloudEvent)
    assert event.type == "Microsoft.KeyVault.KeyNewVersionCreated"


async def test_function_failure_answers_500_so_event_grid_retries(host: LocalFunctionsHost) -> None:
    async with aiohttp.ClientSession() as session:
        response = await session.post(
            host.event_grid_webhook_url("on_event"), json=[_event("explode")]
        )
        assert response.status == 500
    assert host.invocations[-1].ok is False


async def test_webhook_without_the_system_key_is_refused(host: LocalFunctionsHost) -> None:
    url = host.event_grid_webhook_url("on_event").replace(host.keys.eventgrid, "wrong")
    async with aiohttp.ClientSession() as session:
        response = await session.post(url, json=[_event()])
        assert response.status == 401
    assert RECEIVED == []


async def test_http_trigger_requires_a_function_key(host: LocalFunctionsHost) -> None:
    url = f"{host.base_url}/api/echo/alice"
    async with aiohttp.ClientSession() as session:
        refused = await session.post(url, json={"a": 1})
        assert refused.status == 401
        ok = await session.post(url, json={"a": 1}, headers={"x-functions-key": host.keys.function})
        assert ok.status == 200
        assert await ok.json() == {"name": "alice", "got": {"a": 1}}


async def test_admin_api_fires_a_timer_with_a_real_timer_request(host: LocalFunctionsHost) -> None:
    async with aiohttp.ClientSession() as session:
        response = await session.post(
            f"{host.base_url}/admin/functions/tick",
            json={"input": ""},
            headers={"x-functions-key": host.keys.master},
        )
        assert response.status == 202
    await asyncio.sleep(0)
    (timer,) = RECEIVED
    assert isinstance(timer, func.TimerRequest)
    assert timer.past_due is False
