"""The Azurite launcher and fixture: a usable connection string, or the configured one."""

from __future__ import annotations

import pytest
from azure.data.tables import TableServiceClient
from azure.storage.blob import BlobServiceClient
from azure.storage.queue import QueueServiceClient

from devtools.azurite import CONNECTION_STRING_ENV, AzuriteInfo, azurite_connection


@pytest.mark.azurite
def test_fixture_serves_all_three_services(azurite: AzuriteInfo) -> None:
    assert all((azurite.blob_endpoint, azurite.queue_endpoint, azurite.table_endpoint))
    cs = azurite.connection_string
    BlobServiceClient.from_connection_string(cs).get_service_properties()
    list(QueueServiceClient.from_connection_string(cs).list_queues())
    list(TableServiceClient.from_connection_string(cs).list_tables())


def test_configured_connection_string_is_used_as_is(monkeypatch: pytest.MonkeyPatch) -> None:
    configured = (
        "DefaultEndpointsProtocol=http;AccountName=a;AccountKey=a2V5;"
        "BlobEndpoint=http://10.0.0.1:1/a;TableEndpoint=http://10.0.0.1:2/a;"
    )
    monkeypatch.setenv(CONNECTION_STRING_ENV, configured)
    with azurite_connection() as info:
        assert info.connection_string == configured
        assert info.table_endpoint == "http://10.0.0.1:2/a"
        assert info.queue_endpoint is None
