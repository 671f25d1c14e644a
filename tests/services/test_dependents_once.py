"""One evaluation per account per Key Vault event (issue 10).

A rotation routes a follow-up AND the key's access re-check; a near-expiry event routes a
warning AND the same re-check. Each evaluation costs ARM and vault calls, so the same account
must not be evaluated twice for one event. The event trigger now queues them as ONE
follow-up message (issue 11: not inside Event Grid's 30 seconds); the queue trigger runs it.
These tests run the real ``KeyEventService``, the real queue message and the real
``DependentsFollowUpService`` over the real ``DependentService`` (Face's registration) with
in-memory ports, and count the key-access reads, which is one per evaluation.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography.hazmat.primitives.asymmetric import rsa

from devtools.local_keys import LocalKeyVersionSource
from shared.composition._dependents import KINDS
from shared.crypto import VaultAllowList
from shared.dependents import (
    DependentKind,
    DependentResource,
    FlagRecord,
    KeyAccessFacts,
    PendingEffects,
)
from shared.events import AccessScope, FollowUpRotation
from shared.services._all_dependents import AllDependents
from shared.services._dependent_effects import EffectRunner
from shared.services._planner import RewrapPlanner
from shared.services.dependents import DependentService
from shared.services.follow_up import DependentsFollowUpService
from shared.services.key_events import HANDLED, EventOutcome, KeyEventService
from tests.dependents.conftest import account, facts, key, version
from tests.services.test_key_events import Ledger, Queue

VAULT = "contoso-kv"
KEY_REF = f"https://{VAULT}.vault.azure.net/keys/face-cmk"
ARM_ID = (
    "/subscriptions/11111111-0000-0000-0000-000000000000/resourceGroups/rg/providers/"
    f"Microsoft.KeyVault/vaults/{VAULT}"
)
V1, V2 = "1" * 32, "2" * 32
NOW = datetime(2026, 11, 29, 3, 0, tzinfo=UTC)
PRIVATE = rsa.generate_private_key(public_exponent=65537, key_size=2048)
FACE = next(kind for kind in KINDS if kind.name == "face")


class Inventory:
    def __init__(self, accounts: Sequence[DependentResource]) -> None:
        self.accounts = list(accounts)
        self.listings = 0

    async def list_accounts(self) -> Sequence[DependentResource]:
        self.listings += 1
        return self.accounts


class Writer:
    def __init__(self) -> None:
        self.repointed: list[tuple[str, str]] = []

    async def set_key_version(self, account: DependentResource, version: str) -> None:
        self.repointed.append((account.id, version))

    async def set_tags(self, resource_id: str, tags: Mapping[str, str]) -> None:
        return None


class Reader:
    """Counts evaluations: the service reads an account's facts once per evaluation."""

    def __init__(self, answer: KeyAccessFacts) -> None:
        self.answer = answer
        self.reads: list[str] = []
        self.passes = 0

    async def read(self, account: DependentResource) -> KeyAccessFacts:
        self.reads.append(account.id)
        return self.answer

    def begin_pass(self) -> None:
        self.passes += 1


class Journal:
    def __init__(self) -> None:
        self.records: dict[str, FlagRecord] = {}

    async def load(self, account_id: str) -> tuple[FlagRecord | None, PendingEffects | None]:
        return self.records.get(account_id), None

    async def put(self, record: FlagRecord) -> None:
        self.records[record.account_id] = record

    async def put_pending(self, current: FlagRecord | None, pending: PendingEffects) -> None:
        return None

    async def first(self, limit: int) -> tuple[Sequence[FlagRecord], bool]:
        records = list(self.records.values())
        return records[:limit], len(records) > limit


class Rotator:
    def __init__(self, reader: Reader) -> None:
        self.reader = reader
        self.reads_before_rotation: int | None = None

    async def rotate(self, key_ref: str, *, if_current_version: str | None) -> str | None:
        self.reads_before_rotation = len(self.reader.reads)
        return "3" * 32


def _accounts() -> list[DependentResource]:
    vault = f"https://{VAULT}.vault.azure.net"
    return [
        account(id="a-pinned", key_vault_uri=vault, key_version=V1),
        account(id="a-latest", key_vault_uri=vault),
        account(id="a-other-key", key_vault_uri=vault, key_name="other"),
    ]


class Events:
    """The event trigger, then the queue trigger for the follow-up it queued."""

    def __init__(self, events: KeyEventService, worker: DependentsFollowUpService, queue: Queue):
        self._events, self._worker, self.queue = events, worker, queue

    async def handle(self, payload: dict[str, Any]) -> EventOutcome:
        outcome = await self._events.handle(payload)
        assert len(self.queue.follow_ups) == 1, "one follow-up message per event"
        while self.queue.follow_ups:
            body = self.queue.follow_ups.pop(0)
            assert (await self._worker.handle(body, message_id="m")).status == "completed"
        return outcome


def _world(
    *, auto_rotate: bool = False
) -> tuple[Events, DependentService, Reader, Inventory, Rotator]:
    inventory, writer = Inventory(_accounts()), Writer()
    answer = facts(key=replace(key(version(V1), version(V2), current=V2), kid=f"{KEY_REF}/{V2}"))
    reader, journal = Reader(answer), Journal()
    kind = DependentKind(FACE.name, FACE.labels, inventory, writer)
    effects = EffectRunner(journal, writer, None, labels=FACE.labels, clock=lambda: NOW)
    allow = VaultAllowList.parse(VAULT)
    service = DependentService(
        kind, reader, journal, effects, allow_list=allow, repoint=True, clock=lambda: NOW
    )
    keys = LocalKeyVersionSource()
    for index, v in enumerate((V1, V2)):
        keys.add_version(KEY_REF, v, PRIVATE, created=NOW - timedelta(days=2 - index))
    rotator = Rotator(reader)
    ledger, queue = Ledger(), Queue()
    events = KeyEventService(
        allow_list=allow,
        ledger=ledger,
        planner=RewrapPlanner(keys, queue, ["table:keywarddeks"]),
        follow_ups=queue,
        rotator=rotator,
        auto_rotate_near_expiry=auto_rotate,
        now=lambda: NOW,
    )
    worker = DependentsFollowUpService(
        allow_list=allow,
        ledger=ledger,
        dependents=AllDependents([service]),
        rotator=rotator,
        now=lambda: NOW,
    )
    return Events(events, worker, queue), service, reader, inventory, rotator


def _event(event_type: str, version: str) -> dict[str, Any]:
    return {
        "id": f"ev-{event_type}", "topic": ARM_ID, "subject": "face-cmk",
        "eventType": f"Microsoft.KeyVault.{event_type}", "eventTime": "2026-11-29T02:00:00Z",
        "data": {
            "Id": f"{KEY_REF}/{version}", "VaultName": VAULT, "ObjectType": "Key",
            "ObjectName": "face-cmk", "Version": version, "NBF": None,
            "EXP": 1796000000 if event_type == "KeyNearExpiry" else None,
        },
        "dataVersion": "1", "metadataVersion": "1",
    }  # fmt: skip


async def test_a_rotation_evaluates_each_account_on_the_key_once() -> None:
    events, _, reader, _, _ = _world()
    outcome = await events.handle(_event("KeyNewVersionCreated", V2))
    assert outcome.status == HANDLED, outcome
    # Both routed actions ran (the log line is unchanged) ...
    assert "FollowUpRotation" in outcome.actions
    assert "ReevaluateAccess" in outcome.actions
    # ... but each account on the key was evaluated exactly once, the other key's not at all.
    assert sorted(reader.reads) == ["a-latest", "a-pinned"]
    # One pass of the reader: what accounts share (vault, role assignments) is read fresh once.
    assert reader.passes == 1


async def test_the_single_evaluation_still_follows_the_rotation_up() -> None:
    events, service, _, _, _ = _world()
    await events.handle(_event("KeyNewVersionCreated", V2))
    assert service.kind.writer.repointed == [("a-pinned", V2)]  # type: ignore[attr-defined]


async def test_a_near_expiry_event_evaluates_each_account_on_the_key_once() -> None:
    events, _, reader, _, _ = _world()
    outcome = await events.handle(_event("KeyNearExpiry", V2))
    assert outcome.status == HANDLED, outcome
    assert outcome.actions == ("WarnNearExpiry", "ReevaluateAccess")
    assert sorted(reader.reads) == ["a-latest", "a-pinned"]


async def test_near_expiry_evaluates_before_it_auto_rotates() -> None:
    events, _, reader, _, rotator = _world(auto_rotate=True)
    outcome = await events.handle(_event("KeyNearExpiry", V2))
    assert outcome.actions == ("WarnNearExpiry", "ReevaluateAccess", "RotateKey")
    assert rotator.reads_before_rotation == 2
    assert sorted(reader.reads) == ["a-latest", "a-pinned"]


async def test_an_account_in_a_rotation_and_a_scope_is_evaluated_once() -> None:
    _, service, reader, inventory, _ = _world()
    scopes = [AccessScope(VAULT, "face-cmk"), AccessScope(VAULT, None)]
    summary = await service.on_key_event([FollowUpRotation(KEY_REF, V2)], scopes)
    assert sorted(reader.reads) == ["a-latest", "a-other-key", "a-pinned"]
    assert summary.accounts == 3
    assert summary.repointed == 1
    assert inventory.listings == 1
