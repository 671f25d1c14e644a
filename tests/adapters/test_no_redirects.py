"""Storage and Event Grid clients follow no redirect (issue 11 item 9).

azure-core re-sends a redirected request, body and all, to wherever ``Location`` points.
Azurite and the emulator's Event Grid never redirect, so these tests stand a local HTTP
server in front of keyward's real SDK clients that answers every request with a 307 to a
second, recording server: keyward's clients (the DEK stores, the queue, the flag
publisher, and the composition root's own state table) must refuse the answer and send
nothing to the recorder. A control with a stock SDK client proves the redirect is real.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
from aiohttp import web
from azure.core.credentials import AzureKeyCredential
from azure.core.exceptions import HttpResponseError
from azure.storage.queue.aio import QueueClient

from shared.adapters.dek_blob import BlobDekStore
from shared.adapters.dek_table import TableDekStore
from shared.adapters.eventgrid_publisher import EventGridFlagPublisher
from shared.adapters.queues import RewrapQueue
from shared.composition import AppContext
from shared.errors import ServiceError
from shared.rewrap import ShardMessage
from shared.settings import Settings

ACCOUNT_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)
KEY_REF = "https://contoso-kv.vault.azure.net/keys/orders"


@dataclass
class Servers:
    redirector: str
    recorder: str
    received: list[str] = field(default_factory=list)

    @property
    def connection_string(self) -> str:
        endpoint = f"{self.redirector}/devstoreaccount1"
        return (
            f"DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey={ACCOUNT_KEY};"
            f"BlobEndpoint={endpoint};QueueEndpoint={endpoint};TableEndpoint={endpoint};"
        )


async def _site(app: web.Application) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner, f"http://127.0.0.1:{port}"


@pytest.fixture
async def servers() -> AsyncIterator[Servers]:
    received: list[str] = []

    async def record(request: web.Request) -> web.Response:
        body = await request.read()
        received.append(f"{request.method} {request.path} ({len(body)} bytes)")
        return web.Response(status=400)

    recorder_app = web.Application()
    recorder_app.router.add_route("*", "/{tail:.*}", record)
    recorder, recorder_url = await _site(recorder_app)

    async def redirect(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(status=307, headers={"Location": recorder_url + request.path_qs})

    redirector_app = web.Application()
    redirector_app.router.add_route("*", "/{tail:.*}", redirect)
    redirector, redirector_url = await _site(redirector_app)
    yield Servers(redirector_url, recorder_url, received)
    await redirector.cleanup()
    await recorder.cleanup()


def _refused_redirect(error: ServiceError) -> None:
    assert error.status == 307
    assert not error.transient


async def test_the_queue_refuses_a_redirect(servers: Servers) -> None:
    queue = RewrapQueue.from_connection_string(servers.connection_string, "keyward-jobs")
    message = ShardMessage.for_shard(KEY_REF, "a" * 32, "table:deks")
    try:
        with pytest.raises(ServiceError) as refused:
            await queue.send(message)
    finally:
        await queue.close()
    _refused_redirect(refused.value)
    assert servers.received == []

    # Control: a stock queue client follows the redirect with the message in the body.
    stock = QueueClient.from_connection_string(servers.connection_string, "q", retry_total=0)
    async with stock:
        with pytest.raises(HttpResponseError):  # the recorder's 400
            await stock.send_message("hello")
    assert servers.received, "the redirect does carry a stock client's request elsewhere"


async def test_the_dek_stores_refuse_a_redirect(servers: Servers) -> None:
    table = TableDekStore.from_connection_string(servers.connection_string, "deks")
    blob = BlobDekStore.from_connection_string(servers.connection_string, "invoices")
    try:
        with pytest.raises(ServiceError) as refused_table:
            await table.create_table()
        with pytest.raises(ServiceError) as refused_blob:
            await blob.version_counts(KEY_REF)
    finally:
        await table.close()
        await blob.close()
    _refused_redirect(refused_table.value)
    _refused_redirect(refused_blob.value)
    assert servers.received == []


async def test_the_flag_publisher_refuses_a_redirect(servers: Servers) -> None:
    publisher = EventGridFlagPublisher(f"{servers.redirector}/api/events", AzureKeyCredential("k"))
    try:
        with pytest.raises(ServiceError) as refused:
            await publisher.publish(
                event_type="Keyward.FaceAccount.KeyAccessLost",
                source="/keyward/face-accounts",
                subject="/subscriptions/s/resourceGroups/g/providers/x/accounts/a",
                data={"status": "ACCESS_LOST"},
            )
    finally:
        await publisher.close()
    _refused_redirect(refused.value)
    assert servers.received == []


async def test_the_composition_root_s_own_storage_refuses_a_redirect(servers: Servers) -> None:
    settings = Settings.from_env(
        {"KEYWARD_VAULT_ALLOWLIST": "contoso-kv", "AzureWebJobsStorage": servers.connection_string}
    )
    with pytest.raises(ServiceError) as refused:
        await AppContext.build(settings, credential=_NoToken())  # creates its state table
    _refused_redirect(refused.value)
    assert servers.received == []


class _NoToken:
    """Storage here uses the account key; no token is ever asked for."""

    async def get_token(self, *scopes: str, **kwargs: object) -> object:
        raise AssertionError("no token is needed")

    async def close(self) -> None:
        return None
