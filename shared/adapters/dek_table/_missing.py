"""A table that does not exist yet: reads see it as empty, the first write creates it.

The KEK table and the mode row appear only when a store first uses hierarchy mode, and an
application's data table may be new; none of them should need an operator's step first.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable
from typing import TypeVar

from azure.core.exceptions import AzureError, ResourceExistsError, ResourceNotFoundError
from azure.data.tables.aio import TableClient

from shared.adapters._azure_errors import error_code, translate, translated
from shared.errors import ServiceError

T = TypeVar("T")
_TABLE_NOT_FOUND = "TableNotFound"


def is_missing_table(error: BaseException) -> bool:
    """Whether a (translated or SDK) error of a query or an insert says the table does not
    exist: a 404 with ``TableNotFound``, or with no code (Azurite sends none on an insert).
    Only for those two operations, where no other thing can be missing."""
    if isinstance(error, ServiceError):
        return error.status == 404 and error.code in (_TABLE_NOT_FOUND, None)
    if not isinstance(error, ResourceNotFoundError):
        return False
    return error_code(error) in (_TABLE_NOT_FOUND, None)


async def create_table(table: TableClient) -> None:
    """Create ``table`` if it does not exist yet (a concurrent creator is fine)."""
    with translated("create table"), contextlib.suppress(ResourceExistsError):
        await table.create_table()


async def creating_table(
    table: TableClient, operation: str, write: Callable[[], Awaitable[T]]
) -> T:
    """``write()``; when the table does not exist, create it and write once more.

    Raises:
        ServiceError: the write failed (translated; 409 -> ConflictError).
    """
    try:
        return await write()
    except ResourceNotFoundError as error:
        if not is_missing_table(error):
            raise translate(error, operation) from None
    except AzureError as error:
        raise translate(error, operation) from None
    await create_table(table)
    with translated(operation):
        return await write()
