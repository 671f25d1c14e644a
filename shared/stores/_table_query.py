"""A lean Table query: one page of entities as plain dicts, through the SDK's own pipeline.

Why: ``TableClient.query_entities`` deserializes every property through the generated
model layer and then converts it into a ``TableEntity``, about half of a scan's CPU per DEK.
A scan needs a handful of string properties, so this module sends the same ``GET
/{table}()`` request (``$filter``, ``$select``, ``$top``, ``NextPartitionKey``/``NextRowKey``)
through ``TableClient._client.send_request`` (same authentication, retries and transport) and
reads the JSON itself. The continuation token has the SDK's shape
(``{"PartitionKey": ..., "RowKey": ...}``), so either path can resume the other's scan.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

from azure.core.rest import HttpRequest
from azure.data.tables.aio import TableClient

from shared.stores._azure_errors import from_status

#: The service's own cap on entities per query page.
MAX_QUERY_PAGE = 1000
_NEXT_PARTITION = "x-ms-continuation-NextPartitionKey"
_NEXT_ROW = "x-ms-continuation-NextRowKey"


def quote_value(value: str) -> str:
    """An OData string literal (single quotes doubled)."""
    return "'" + value.replace("'", "''") + "'"


async def query_page(
    table: TableClient,
    query_filter: str,
    select: Sequence[str],
    top: int,
    token: Mapping[str, str] | None,
    *,
    operation: str,
) -> tuple[list[dict[str, Any]], dict[str, str] | None]:
    """One page of matching entities (each with ``odata.etag``) and the next page's token.

    Raises:
        ServiceError: the service refused the query (translated from its status).
        azure.core.exceptions.AzureError: connection failures (the caller translates them).
    """
    params = {"$filter": query_filter, "$select": ",".join(select), "$top": str(top)}
    if token:
        params["NextPartitionKey"] = token["PartitionKey"]
        if token.get("RowKey"):
            params["NextRowKey"] = token["RowKey"]
    request = HttpRequest(
        "GET",
        f"{table.url.split('?', 1)[0].rstrip('/')}/{table.table_name}()",
        params=params,
        headers={
            "x-ms-version": table.api_version,
            "DataServiceVersion": "3.0",
            "Accept": "application/json;odata=minimalmetadata",
        },
    )
    response = await table._client.send_request(request)
    if response.status_code != 200:
        headers = response.headers
        raise from_status(operation, response.status_code, headers.get("x-ms-error-code"),
                          headers.get("Retry-After"))  # fmt: skip
    body = response.json()
    entities = body.get("value") if isinstance(body, dict) else None
    if not isinstance(entities, list):
        raise from_status(operation, response.status_code, "UnexpectedQueryAnswer")
    next_partition = response.headers.get(_NEXT_PARTITION)
    next_token = None
    if next_partition:
        next_token = {"PartitionKey": next_partition, "RowKey": response.headers.get(_NEXT_ROW, "")}
    return [e for e in entities if isinstance(e, dict)], next_token


async def query_all(
    table: TableClient, query_filter: str, select: Sequence[str], operation: str
) -> AsyncIterator[dict[str, Any]]:
    """Every matching entity, one page in memory at a time."""
    token: dict[str, str] | None = None
    while True:
        entities, token = await query_page(
            table, query_filter, select, MAX_QUERY_PAGE, token, operation=operation
        )
        for entity in entities:
            yield entity
        if token is None:
            return
