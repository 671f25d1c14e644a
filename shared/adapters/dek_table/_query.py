"""Table queries through the public ``TableClient.query_entities`` API, one page at a time.

A scan reads one page per call and checkpoints between pages, so the page boundary and its
continuation token must be visible: ``query_entities(..., select=..., results_per_page=...)
.by_page(continuation_token=...)`` gives both. The token has the SDK's shape
(``{"PartitionKey": ..., "RowKey": ...}``); keyward stores it in its scan continuation.

Why not the lean raw-request path this module used to take (``TableClient._client``, private):
measured on Azurite, 2,000 entities of 8 string properties, the SDK's model layer costs
0.021 ms of CPU per entity against 0.006 ms for reading the JSON directly. 0.015 ms per DEK
is about 1% of the CPU a rewrap spends on that DEK, not worth a reach into private SDK state.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

from azure.data.tables.aio import TableClient

from shared.adapters._azure_errors import translated

#: The service's own cap on entities per query page.
MAX_QUERY_PAGE = 1000


def quote_value(value: str) -> str:
    """An OData string literal (single quotes doubled)."""
    return "'" + value.replace("'", "''") + "'"


def spellings_filter(name: str, value: str) -> str:
    """A filter on property ``name`` that holds every case spelling of ``value``.

    Table filters compare strings ordinally and have no ``tolower``. Every case variant of a
    string lies between its all-upper and its all-lower spelling (at the first position where
    a variant differs from the all-upper one it has a lower-case letter, which sorts after
    every upper-case one; symmetrically for the all-lower one), so one range holds them all.
    The scheme keyward writes (``https://``) stays lower-case in both bounds; keeping it
    out of the range keeps every other URL-shaped value out. The range also holds other
    values (other keys whose names sort inside it): callers compare folded values after.
    """
    scheme, sep, rest = value.partition("://")
    if not sep:
        return f"{name} ge {quote_value(value.upper())} and {name} le {quote_value(value.lower())}"
    low, high = f"{scheme}://{rest.upper()}", f"{scheme}://{rest.lower()}"
    return f"{name} ge {quote_value(low)} and {name} le {quote_value(high)}"


def _row(entity: Mapping[str, Any]) -> dict[str, Any]:
    """An entity as a plain dict with its ETag under ``odata.etag`` (what writers condition on)."""
    metadata = getattr(entity, "metadata", None) or {}
    return {**entity, "odata.etag": metadata.get("etag")}


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
        ServiceError: the service refused the query or could not be reached (translated).
    """
    # The SDK's entity pager takes and gives a dict token (its stubs say ``str``).
    continuation: Any = None
    if token:
        continuation = {
            "PartitionKey": token["PartitionKey"],
            "RowKey": token.get("RowKey") or None,
        }
    with translated(operation):
        pager = table.query_entities(query_filter, select=list(select), results_per_page=top)
        pages: Any = pager.by_page(continuation_token=continuation)
        try:
            page = await pages.__anext__()
        except StopAsyncIteration:
            return [], None
        entities = [_row(entity) async for entity in page]
    next_token: Any = pages.continuation_token
    if not next_token or not next_token.get("PartitionKey"):
        return entities, None
    return entities, {"PartitionKey": next_token["PartitionKey"],
                      "RowKey": next_token.get("RowKey") or ""}  # fmt: skip


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
