"""The audit trail's rows on Azurite: newest first across days with one bounded read, the
caller's ids and roles kept (no token), and retention deleting whole old days only."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from azure.data.tables.aio import TableClient

from shared.adapters.audit_trail import TableAuditTrail, audit_partition
from shared.composition import Caller
from shared.services.audit import ACCEPTED, REFUSED, AuditEntry

pytestmark = pytest.mark.azurite

CALLER = Caller("0a0b", "7f7f", "ada@contoso.example", ("Keyward.Operator",))


def _entry(day: int, hour: int, action: str, caller: Caller | None = CALLER) -> AuditEntry:
    at = datetime(2026, 12, day, hour, 0, tzinfo=UTC)
    return AuditEntry(at, action, caller, f"https://v/keys/k{day}-{hour}", ACCEPTED, "op" * 16)


async def test_rows_are_newest_first_across_days_bounded_and_expire_by_day(
    table: TableClient,
) -> None:
    trail = TableAuditTrail(table)
    for day, hour, action in [(4, 9, "rewrap"), (5, 8, "retire"), (5, 17, "migrate"),
                              (6, 1, "rotate_keks")]:  # fmt: skip
        await trail.append(_entry(day, hour, action).to_dict())
    await trail.append(
        AuditEntry(
            datetime(2026, 12, 6, 2, tzinfo=UTC),
            "rotate_keks",
            None,
            "table:t k",
            REFUSED,
            None,
            "StoreJobBusy",
        ).to_dict()
    )
    rows = await trail.recent(3)
    assert [row["action"] for row in rows] == ["rotate_keks", "rotate_keks", "migrate"]
    assert rows[0]["caller"] is None
    assert (rows[0]["outcome"], rows[0]["detail"]) == (REFUSED, "StoreJobBusy")
    assert rows[1]["caller"] == CALLER.to_dict()
    assert Caller.from_dict(rows[1]["caller"]) == CALLER
    assert rows[2]["operation_id"] == "op" * 16

    assert await trail.expire(datetime(2026, 12, 5, tzinfo=UTC).date(), 100) == 1
    assert [row["action"] for row in await trail.recent(10)] == [
        "rotate_keks", "rotate_keks", "migrate", "retire"]  # fmt: skip
    assert audit_partition(datetime(2026, 12, 6).date()) < audit_partition(
        datetime(2026, 12, 5).date()
    )
