"""The lean ``$batch`` writer: what it sends reads back through azure-data-tables unchanged,
and it reads the service's answers (Azurite's, and the documented Azure shapes)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

import pytest
from azure.data.tables import EdmType
from azure.data.tables.aio import TableClient

from devtools.azurite import AzuriteInfo
from shared.adapters.dek_table._batch import (
    BatchOperation,
    PartResult,
    parse_parts,
    send_changeset,
)
from shared.adapters.dek_table._query import query_all, query_page, quote_value

#: Documented answers of the Azure Table service to an entity group transaction
#: ("Performing entity group transactions"): a success and a failing changeset.
AZURE_SUCCESS = (
    b"--batchresponse_7ab1c8a8\r\nContent-Type: multipart/mixed; boundary=changesetresponse_1\r\n"
    b"\r\n--changesetresponse_1\r\nContent-Type: application/http\r\n"
    b"Content-Transfer-Encoding: binary\r\n\r\nHTTP/1.1 204 No Content\r\n"
    b"X-Content-Type-Options: nosniff\r\nCache-Control: no-cache\r\n"
    b"Preference-Applied: return-no-content\r\nDataServiceVersion: 3.0;\r\n"
    b"ETag: W/\"datetime'2013-09-05T20%3A10%3A41.0191853Z'\"\r\n\r\n"
    b"\r\n--changesetresponse_1\r\nContent-Type: application/http\r\n"
    b"Content-Transfer-Encoding: binary\r\n\r\nHTTP/1.1 204 No Content\r\n"
    b"etag: W/\"datetime'2013-09-05T20%3A10%3A41.0201853Z'\"\r\n\r\n"
    b"\r\n--changesetresponse_1--\r\n--batchresponse_7ab1c8a8--\r\n"
)
AZURE_FAILURE = (
    b"--batchresponse_1\r\nContent-Type: multipart/mixed; boundary=changesetresponse_2\r\n\r\n"
    b"--changesetresponse_2\r\nContent-Type: application/http\r\n"
    b"Content-Transfer-Encoding: binary\r\n\r\nHTTP/1.1 400 Bad Request\r\nContent-ID: 1\r\n"
    b"Content-Type: application/json;odata=minimalmetadata;streaming=true;charset=utf-8\r\n\r\n"
    b'{"odata.error":{"code":"InvalidInput","message":{"lang":"en-US",'
    b'"value":"1:One of the request inputs is not valid."}}}\r\n'
    b"--changesetresponse_2--\r\n--batchresponse_1--\r\n"
)


def test_documented_azure_answers_are_read() -> None:
    assert parse_parts(AZURE_SUCCESS) == [
        PartResult(204, "W/\"datetime'2013-09-05T20%3A10%3A41.0191853Z'\""),
        PartResult(204, "W/\"datetime'2013-09-05T20%3A10%3A41.0201853Z'\""),
    ]
    assert parse_parts(AZURE_FAILURE) == [PartResult(400, None, "InvalidInput")]
    assert parse_parts(b"garbage") == []


@pytest.mark.azurite
def test_written_entities_read_back_through_the_sdk(azurite: AzuriteInfo) -> None:
    when = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
    keys = ["it's", "space and %25", "caf\u00e9", "plain"]

    async def main() -> None:
        table = TableClient.from_connection_string(
            azurite.connection_string, f"batch{uuid.uuid4().hex[:12]}"
        )
        await table.create_table()
        try:
            inserted = await send_changeset(table, [
                BatchOperation("insert", {"PartitionKey": "p'1", "RowKey": key, "S": "text",
                                          "D": when, "B": b"\x00\xff", "L": 2**40, "I": 7,
                                          "T": True, "F": 1.5, "N": None})
                for key in keys
            ])  # fmt: skip
            assert inserted.landed(len(keys))
            entity = await table.get_entity("p'1", "it's")
            read = tuple(entity[name] for name in "SDBITF")
            assert read == ("text", when, b"\x00\xff", 7, True, 1.5)
            assert entity["L"].value == 2**40
            assert entity["L"].edm_type is EdmType.INT64
            assert "N" not in entity

            etags = {key: (await table.get_entity("p'1", key)).metadata["etag"] for key in keys}
            merged = await send_changeset(table, [
                BatchOperation("merge", {"PartitionKey": "p'1", "RowKey": key, "S": "new"},
                               etags[key])
                for key in keys
            ])  # fmt: skip
            assert merged.landed(len(keys))
            assert all(part.etag for part in merged.parts)
            after = await table.get_entity("p'1", "caf\u00e9")
            assert (after["S"], after["B"]) == ("new", b"\x00\xff")  # MERGE kept the rest
            assert after.metadata["etag"] == merged.parts[2].etag

            stale = await send_changeset(table, [
                BatchOperation("merge", {"PartitionKey": "p'1", "RowKey": key, "S": "x"},
                               etags[key])
                for key in keys
            ])  # fmt: skip
            assert not stale.landed(len(keys))
            assert (stale.status, stale.failure.status) == (202, 412)
            assert (await table.get_entity("p'1", "plain"))["S"] == "new"  # nothing landed
        finally:
            await table.delete_table()
            await table.close()

    asyncio.run(main())


@pytest.mark.azurite
def test_query_page_pages_and_shares_the_sdks_continuation(azurite: AzuriteInfo) -> None:
    async def main() -> None:
        table = TableClient.from_connection_string(
            azurite.connection_string, f"query{uuid.uuid4().hex[:12]}"
        )
        await table.create_table()
        try:
            for index in range(7):
                await table.create_entity(
                    {"PartitionKey": f"p{index % 2}", "RowKey": f"r{index}", "K": "it's",
                     "Other": "x", "B": b"\x01"}
                )  # fmt: skip
            await table.create_entity({"PartitionKey": "p0", "RowKey": "zz", "K": "no"})
            query = "K eq " + quote_value("it's")
            first, token = await query_page(table, query, ["PartitionKey", "RowKey", "K"], 3,
                                            None, operation="test")  # fmt: skip
            assert len(first) == 3
            assert token is not None
            assert all(set(e) == {"odata.etag", "PartitionKey", "RowKey", "K"} for e in first)
            # The SDK resumes from query_page's token and sees the rest, with the same ETags.
            pager = table.query_entities(
                "K eq @k", parameters={"k": "it's"}, results_per_page=100
            ).by_page(continuation_token=token)
            rest = []
            async for page in pager:
                rest.extend([e async for e in page])
            columns = ["PartitionKey", "RowKey", "K"]
            everything = [e async for e in query_all(table, query, columns, "test")]
            assert len(everything) == 7
            assert [e["RowKey"] for e in first] + [e["RowKey"] for e in rest] == [
                e["RowKey"] for e in everything
            ]
            lean_etags = {e["RowKey"]: e["odata.etag"] for e in everything}
            assert all(lean_etags[e["RowKey"]] == e.metadata["etag"] for e in rest)
        finally:
            await table.delete_table()
            await table.close()

    asyncio.run(main())
