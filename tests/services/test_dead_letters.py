"""Dead letters: the blob format, the adapter's bounded pages on Azurite, the status per
vault, and the replay's rules (replayed/, rejected/, kept on a transient fault)."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from typing import Any

import pytest
from azure.storage.blob.aio import ContainerClient

from devtools.azurite import AzuriteInfo
from shared.adapters.dead_letters import BlobDeadLetters
from shared.errors import TransientServiceError
from shared.events import DeadLetterBlob, is_pending, parse_dead_letter_blob, vault_of
from shared.services.dead_letters import DeadLetterReplay, dead_letter_status
from shared.services.key_events import DUPLICATE, HANDLED, REJECTED, EventOutcome

ARM = "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg"


def _event(vault: str, event_id: str | None = None, **extra: Any) -> dict[str, Any]:
    return {
        "id": event_id or str(uuid.uuid4()),
        "topic": f"{ARM}/providers/Microsoft.KeyVault/vaults/{vault}",
        "subject": "k1",
        "eventType": "Microsoft.KeyVault.KeyNewVersionCreated",
        "data": {"VaultName": vault, "ObjectName": "k1", "Version": "v2"},
        "eventTime": "2026-12-06T10:00:00Z",
        "dataVersion": "1",
        "metadataVersion": "1",
        "deadLetterReason": "MaxDeliveryAttemptsExceeded",
        "deliveryAttempts": 3,
        "lastDeliveryOutcome": "GenericError",
        "lastHttpStatusCode": 500,
        "publishTime": extra.pop("publishTime", "2026-12-06T10:00:01.0000000Z"),
        "lastDeliveryAttemptTime": "2026-12-06T10:01:00.0000000Z",
        **extra,
    }


def test_a_blob_is_parsed_into_its_events_with_the_dead_letter_fields_removed() -> None:
    blob = parse_dead_letter_blob("SUB/2026/12/6/10/x.json", json.dumps([_event("kv-a")]).encode())
    assert blob.error is None
    assert blob.vaults == ("kv-a",)
    (event,) = blob.events
    assert (event.reason, event.attempts) == ("MaxDeliveryAttemptsExceeded", 3)
    assert "deadLetterReason" not in event.event
    assert "publishTime" not in event.event
    assert event.event["data"]["VaultName"] == "kv-a"


@pytest.mark.parametrize(
    ("content", "error"),
    [(b"{not json", "not JSON"), (b"[]", "not a JSON array of events"),
     (b"[1]", "an entry is not an object"), (b'"x"', "not a JSON array of events")],
)  # fmt: skip
def test_a_malformed_blob_is_reported_not_raised(content: bytes, error: str) -> None:
    assert parse_dead_letter_blob("b", content).error == error


def test_the_vault_comes_from_the_data_else_the_topic() -> None:
    assert vault_of({"data": {"vaultname ": " KV-A "}}) == "kv-a"
    assert vault_of({"source": f"{ARM}/providers/Microsoft.KeyVault/vaults/KV-B"}) == "kv-b"
    assert vault_of({"subject": "nothing"}) == "(unknown)"
    assert not is_pending("replayed/SUB/x.json")
    assert not is_pending("rejected/SUB/x.json")


@dataclass
class _Page:
    blobs: tuple[DeadLetterBlob, ...]
    continuation: str | None
    listed: int


@dataclass
class _Source:
    """In-memory dead letters: name -> content; pages of ``limit`` names in name order."""

    blobs: dict[str, bytes]
    moved: dict[str, str] = field(default_factory=dict)
    name: str = "deadletters"

    async def page(self, *, limit: int, continuation: str | None = None) -> _Page:
        # A marker (the last name listed), as Storage's listing continues by name.
        names = [n for n in sorted(self.blobs) if continuation is None or n > continuation]
        chosen = names[:limit]
        blobs = tuple(parse_dead_letter_blob(n, self.blobs[n]) for n in chosen if is_pending(n))
        return _Page(blobs, chosen[-1] if len(names) > limit else None, len(chosen))

    async def settle(self, name: str, prefix: str) -> str:
        self.blobs[prefix + name] = self.blobs.pop(name)
        self.moved[name] = prefix
        return prefix + name


def _blob(*events: dict[str, Any]) -> bytes:
    return json.dumps(list(events)).encode()


async def test_status_groups_per_vault_bounded_with_a_more_flag() -> None:
    source = _Source({
        "A/1.json": _blob(_event("kv-a", publishTime="2026-12-06T10:00:00Z")),
        "A/2.json": _blob(_event("kv-a", publishTime="2026-12-06T09:00:00Z"), _event("kv-b")),
        "A/3.json": b"garbage",
        "A/4.json": _blob(_event("kv-c")),
    })  # fmt: skip
    status = await dead_letter_status(source, limit=3)
    assert status["more"] is True
    assert status["listed"] == 3
    assert set(status["vaults"]) == {"kv-a", "kv-b"}  # kv-c is on the next page
    kv_a = status["vaults"]["kv-a"]
    assert kv_a["events"] == 2
    assert (kv_a["oldest"], kv_a["newest"]) == ("2026-12-06T09:00:00Z", "2026-12-06T10:00:00Z")
    assert kv_a["reasons"] == {"MaxDeliveryAttemptsExceeded": 2}
    assert status["malformed"] == [{"blob": "A/3.json", "error": "not JSON"}]
    assert await dead_letter_status(None) == {"enabled": False}


class _Handler:
    def __init__(self, answers: dict[str, str | Exception]) -> None:
        self.answers = answers
        self.seen: list[dict[str, Any]] = []

    async def __call__(self, payload: object) -> EventOutcome:
        assert isinstance(payload, dict)
        self.seen.append(payload)
        answer = self.answers.get(payload["id"], HANDLED)
        if isinstance(answer, Exception):
            raise answer
        return EventOutcome(answer, payload["id"], payload["eventType"], jobs=("job-1",))


async def test_replay_settles_each_blob_by_its_outcome() -> None:
    source = _Source({
        "A/ok.json": _blob(_event("kv-a", "ok")),
        "A/dup.json": _blob(_event("kv-a", "dup")),
        "A/bad.json": _blob(_event("kv-a", "bad")),
        "A/later.json": _blob(_event("kv-a", "later")),
        "A/junk.json": b"{",
    })  # fmt: skip
    handler = _Handler({
        "dup": DUPLICATE, "bad": REJECTED, "later": TransientServiceError("vault busy"),
    })  # fmt: skip
    report = await DeadLetterReplay(source, handler, page_size=2).replay()
    assert source.moved == {"A/ok.json": "replayed/", "A/dup.json": "replayed/",
                            "A/bad.json": "rejected/"}  # fmt: skip
    assert "A/later.json" in source.blobs
    assert "A/junk.json" in source.blobs
    assert [entry["blob"] for entry in report.failed] == ["A/later.json"]
    assert report.malformed == [{"blob": "A/junk.json", "error": "not JSON"}]
    assert "deadLetterReason" not in handler.seen[0]  # handed over as delivered
    # Again: only what was kept is tried again; nothing settled is replayed twice.
    handler.answers.pop("later")
    again = await DeadLetterReplay(source, handler, page_size=2).replay()
    assert [entry["blob"] for entry in again.replayed] == ["A/later.json"]
    assert not again.rejected
    assert not again.failed


async def test_a_dry_run_changes_nothing_and_a_vault_filter_leaves_others_alone() -> None:
    source = _Source({"A/a.json": _blob(_event("kv-a")), "A/b.json": _blob(_event("kv-b"))})
    handler = _Handler({})
    dry = await DeadLetterReplay(source, handler).replay(dry_run=True)
    assert len(dry.replayed) == 2
    assert handler.seen == []
    assert source.moved == {}
    only_b = await DeadLetterReplay(source, handler).replay(vault="KV-B")
    assert [entry["blob"] for entry in only_b.replayed] == ["A/b.json"]
    assert only_b.skipped == 1
    assert source.moved == {"A/b.json": "replayed/"}


async def test_a_replay_lists_at_most_max_blobs() -> None:
    source = _Source({f"A/{i:02}.json": _blob(_event("kv-a")) for i in range(10)})
    report = await DeadLetterReplay(source, _Handler({}), page_size=3).replay(max_blobs=4)
    assert len(report.replayed) == 4
    assert report.more is True


@pytest.mark.azurite
async def test_the_blob_adapter_pages_skips_settled_blobs_and_moves(azurite: AzuriteInfo) -> None:
    name = f"dl{uuid.uuid4().hex[:12]}"
    container = ContainerClient.from_connection_string(azurite.connection_string, name)
    await container.create_container()
    letters = BlobDeadLetters(container)
    try:
        for index in range(3):
            await container.upload_blob(f"SUB/2026/12/6/10/{index}.json",
                                        _blob(_event("kv-a", f"e{index}")))  # fmt: skip
        await container.upload_blob("SUB/2026/12/6/10/junk.json", b"nope")
        await container.upload_blob("replayed/SUB/2026/12/6/9/old.json", _blob(_event("kv-a")))
        first = await letters.page(limit=2)
        assert first.listed == 2
        assert first.continuation is not None
        assert [b.name for b in first.blobs] == ["SUB/2026/12/6/10/0.json",
                                                 "SUB/2026/12/6/10/1.json"]  # fmt: skip
        second = await letters.page(limit=10, continuation=first.continuation)
        assert second.continuation is None
        assert second.listed == 3
        assert [b.error for b in second.blobs] == [None, "not JSON"]  # not read, not shown
        moved = await letters.settle("SUB/2026/12/6/10/0.json", "replayed/")
        assert moved == "replayed/SUB/2026/12/6/10/0.json"
        names = [blob.name async for blob in container.list_blobs()]
        assert "SUB/2026/12/6/10/0.json" not in names
        assert moved in names
        assert await letters.settle("SUB/2026/12/6/10/0.json", "replayed/") == moved  # gone
        missing = BlobDeadLetters(
            ContainerClient.from_connection_string(azurite.connection_string, name + "x")
        )
        assert (await missing.page(limit=5)).blobs == ()
        await missing.close()
    finally:
        await container.delete_container()
        await letters.close()
