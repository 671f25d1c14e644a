"""SDK errors leave the Table and Blob stores as keyward errors, never as ``azure.*`` types.

Real clients against real servers: Azurite for refusals it produces (missing table, wrong
account key), and a small local HTTP server for what Azurite never says (429 with
Retry-After, 503 ServerBusy, 500).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from aiohttp import web

from devtools.azurite import DEV_ACCOUNT, AzuriteInfo
from shared.adapters.dek_blob import BlobDekStore
from shared.adapters.dek_table import TableDekStore
from shared.crypto import WrapAlgorithm
from shared.errors import (
    AccessDeniedError,
    ServiceError,
    ThrottledError,
    TransientServiceError,
)
from shared.stores import DekRecord, Rewrap
from tests.stores.conftest import KEY_REF, V2

WRONG_KEY = "AAAA" * 22
RECORD = DekRecord("c/dek", "c", '"etag"', f"{KEY_REF}/{'1' * 32}", WrapAlgorithm.RSA_OAEP_256,
                   b"w" * 256, kcv="0123456789abcdef")  # fmt: skip
REWRAP = Rewrap(
    RECORD, f"{KEY_REF}/{V2}", WrapAlgorithm.RSA_OAEP_256, b"n" * 256, "0123456789abcdef"
)


@asynccontextmanager
async def answering(status: int, headers: dict[str, str], code: str) -> AsyncIterator[str]:
    """A local server answering every request with ``status``; yields a connection string."""

    async def handle(request: web.Request) -> web.Response:
        body = f'{{"odata.error":{{"code":"{code}","message":{{"value":"no"}}}}}}'
        return web.Response(status=status, headers={"x-ms-error-code": code, **headers},
                            text=body, content_type="application/json")  # fmt: skip

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    endpoint = f"http://127.0.0.1:{port}/{DEV_ACCOUNT}"
    try:
        yield (
            f"DefaultEndpointsProtocol=http;AccountName={DEV_ACCOUNT};AccountKey={WRONG_KEY};"
            f"TableEndpoint={endpoint};BlobEndpoint={endpoint};"
        )
    finally:
        await runner.cleanup()


@pytest.mark.parametrize(
    ("status", "headers", "code", "expected"),
    [
        (429, {"Retry-After": "7"}, "TooManyRequests", ThrottledError),
        (503, {}, "ServerBusy", ThrottledError),
        (500, {}, "InternalError", TransientServiceError),
        (403, {}, "AuthorizationFailure", AccessDeniedError),
    ],
)
def test_service_refusals_translated(
    status: int, headers: dict[str, str], code: str, expected: type[ServiceError]
) -> None:
    async def main() -> None:
        async with answering(status, headers, code) as connection_string:
            table = TableDekStore.from_connection_string(connection_string, retry_total=0)
            blob = BlobDekStore.from_connection_string(connection_string, "c", retry_total=0)
            for store in (table, blob):
                calls = [
                    store.scan(KEY_REF, exclude_version=V2),
                    store.version_counts(KEY_REF),
                    store.replace_batch([REWRAP]),
                    store.mark_unreadable(RECORD, "why"),
                ]
                try:
                    for call in calls:
                        with pytest.raises(expected) as caught:
                            await call
                        assert caught.value.status == status
                        assert not type(caught.value).__module__.startswith("azure")
                        if status == 429:
                            assert isinstance(caught.value, ThrottledError)
                            assert caught.value.retry_after == 7.0
                finally:
                    await store.close()

    asyncio.run(main())


@pytest.mark.azurite
def test_missing_table_and_wrong_key_on_azurite(azurite: AzuriteInfo) -> None:
    async def main() -> None:
        missing = TableDekStore.from_connection_string(azurite.connection_string, "nosuchtable")
        wrong_key = azurite.connection_string.replace(
            azurite.connection_string.split("AccountKey=")[1].split(";")[0], WRONG_KEY
        )
        denied = BlobDekStore.from_connection_string(wrong_key, "anything", retry_total=0)
        try:
            with pytest.raises(ServiceError) as caught:
                await missing.scan(KEY_REF, exclude_version=V2)
            assert caught.value.status == 404
            with pytest.raises(AccessDeniedError):
                await denied.scan(KEY_REF, exclude_version=V2)
        finally:
            await missing.close()
            await denied.close()

    asyncio.run(main())


def test_unreachable_service_is_transient() -> None:
    async def main() -> None:
        endpoint = f"http://127.0.0.1:9/{DEV_ACCOUNT}"
        connection_string = (
            f"DefaultEndpointsProtocol=http;AccountName={DEV_ACCOUNT};AccountKey={WRONG_KEY};"
            f"TableEndpoint={endpoint};BlobEndpoint={endpoint};"
        )
        table = TableDekStore.from_connection_string(connection_string, retry_total=0)
        blob = BlobDekStore.from_connection_string(connection_string, "c", retry_total=0)
        for store in (table, blob):
            calls = [
                store.scan(KEY_REF, exclude_version=V2),
                store.version_counts(KEY_REF),
                store.replace_batch([REWRAP]),
                store.mark_unreadable(RECORD, "why"),
            ]
            try:
                for call in calls:
                    with pytest.raises(TransientServiceError):
                        await call
            finally:
                await store.close()

    asyncio.run(main())
