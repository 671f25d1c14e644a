"""KeyEventService: what one delivered event does, with in-process ports.

The vault is keyward's in-process LocalKeyVersionSource (real RSA keys, real version
bookkeeping); the ledger and queue are in-memory implementations of keyward's own ports.
The key-dependent follow-up leaves the event path as a queue message; :func:`drain` runs the
queued follow-ups through the real DependentsFollowUpService, as the queue trigger does.
The same services run against Azurite and the emulator in tests/e2e.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devtools.local_keys import LocalKeyVersionSource
from shared.crypto import VaultAllowList
from shared.errors import AccessDeniedError, ServiceError, TransientServiceError
from shared.events import AccessScope, DependentsFollowUp, FollowUpRotation, RejectedEventRecord
from shared.rewrap import ShardMessage
from shared.services._planner import RewrapPlanner
from shared.services._ports import FlagsPage
from shared.services.follow_up import DependentsFollowUpService
from shared.services.key_events import DUPLICATE, HANDLED, IGNORED, REJECTED, KeyEventService
from shared.services.queue_worker import QueueWorkerService

VAULT = "contoso-kv"
SUBSCRIPTION = "11111111-0000-0000-0000-000000000000"
ARM_ID = (
    f"/subscriptions/{SUBSCRIPTION}/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/{VAULT}"
)
KEY_REF = f"https://{VAULT}.vault.azure.net/keys/orders"
V1, V2, V3 = "1" * 32, "2" * 32, "3" * 32
T0 = datetime(2026, 11, 1, tzinfo=UTC)
PRIVATE = rsa.generate_private_key(public_exponent=65537, key_size=2048)


class Ledger:
    def __init__(self) -> None:
        self.handled: set[str] = set()
        self.rejected: list[RejectedEventRecord] = []

    async def seen(self, dedup_key: str) -> bool:
        return dedup_key in self.handled

    async def remember(self, dedup_key: str, *, event_type: str, event_id: str) -> bool:
        fresh = dedup_key not in self.handled
        self.handled.add(dedup_key)
        return fresh

    async def reject(self, record: RejectedEventRecord) -> None:
        self.rejected.append(record)

    async def recent_rejections(self, limit: int = 50) -> list[dict[str, Any]]:
        return [{"reason": r.reason} for r in self.rejected[:limit]]


class Queue:
    """keyward's one queue: shard messages in ``sent``, follow-ups in ``follow_ups``."""

    def __init__(self, fail: bool = False) -> None:
        self.sent: list[ShardMessage] = []
        self.follow_ups: list[str] = []
        self.fail = fail

    async def send(self, message: ShardMessage, *, delay_seconds: int = 0) -> None:
        if self.fail:
            raise TransientServiceError("queue unreachable", status=503)
        self.sent.append(message)

    async def send_follow_up(self, message: DependentsFollowUp) -> None:
        if self.fail:
            raise TransientServiceError("queue unreachable", status=503)
        self.follow_ups.append(message.to_json())


class Face:
    """Records what the key-dependent resources were asked: each rotation and scope, and
    how many calls (one call per event is one evaluation per account)."""

    def __init__(self, refuse: ServiceError | None = None) -> None:
        self.calls: list[tuple[str, object]] = []
        self.events = 0
        self.refuse = refuse

    async def on_key_event(
        self, rotations: Sequence[FollowUpRotation], scopes: Sequence[AccessScope]
    ) -> object:
        if self.refuse is not None:
            raise self.refuse
        self.events += 1
        self.calls.extend(("rotation", (r.key_ref, r.version)) for r in rotations)
        self.calls.extend(("reevaluate", scope) for scope in scopes)
        return None

    async def sweep(self) -> object:
        return None

    async def status(self, limit: int) -> Mapping[str, FlagsPage]:
        return {}

    async def pinned_versions(self, key_ref: str) -> Mapping[str, Sequence[str]]:
        return {}


def _keys(*versions: str) -> LocalKeyVersionSource:
    source = LocalKeyVersionSource()
    for index, version in enumerate(versions):
        source.add_version(KEY_REF, version, PRIVATE, created=T0 + timedelta(days=index))
    return source


def _service(keys: LocalKeyVersionSource, queue: Queue | None = None):  # type: ignore[no-untyped-def]
    ledger, face, queue = Ledger(), Face(), queue or Queue()
    planner = RewrapPlanner(keys, queue, ["table:keywarddeks", "blob:data"])
    service = KeyEventService(
        allow_list=VaultAllowList.parse(VAULT), ledger=ledger, planner=planner, follow_ups=queue,
        now=lambda: T0,
    )  # fmt: skip
    return service, ledger, queue, face


async def drain(queue: Queue, face: Face, ledger: Ledger) -> list[str]:
    """Run every queued follow-up as the queue trigger does; the outcomes' statuses."""
    worker = DependentsFollowUpService(
        allow_list=VaultAllowList.parse(VAULT), ledger=ledger, dependents=face, now=lambda: T0
    )
    statuses = []
    while queue.follow_ups:
        body = queue.follow_ups.pop(0)
        statuses.append((await worker.handle(body, message_id="m")).status)
    return statuses


def _rotation(version: str, event_id: str = "ev-1", vault: str = VAULT) -> dict[str, Any]:
    return {
        "id": event_id,
        "topic": ARM_ID.replace(VAULT, vault),
        "subject": "orders",
        "eventType": "Microsoft.KeyVault.KeyNewVersionCreated",
        "eventTime": "2026-11-29T02:00:00Z",
        "data": {
            "Id": f"https://{vault}.vault.azure.net/keys/orders/{version}",
            "VaultName": vault, "ObjectType": "Key", "ObjectName": "orders",
            "Version": version, "NBF": None, "EXP": None,
        },
        "dataVersion": "1",
        "metadataVersion": "1",
    }  # fmt: skip


async def test_rotation_plans_one_message_per_shard_and_tells_face() -> None:
    service, ledger, queue, face = _service(_keys(V1, V2))
    outcome = await service.handle(_rotation(V2))
    assert outcome.status == HANDLED
    assert [(m.shard, m.target_version) for m in queue.sent] == [
        ("table:keywarddeks", V2), ("blob:data", V2),
    ]  # fmt: skip
    assert len({m.job_id for m in queue.sent}) == 2
    assert face.calls == [], "the follow-up is queued, not run inside Event Grid's 30 s"
    assert len(queue.follow_ups) == 1
    assert await drain(queue, face, ledger) == ["completed"]
    assert ("rotation", (KEY_REF, V2)) in face.calls
    assert face.events == 1
    assert "PlanRewrap" in outcome.log_line()


async def test_a_redelivered_follow_up_evaluates_nothing_twice() -> None:
    service, ledger, queue, face = _service(_keys(V1, V2))
    await service.handle(_rotation(V2))
    queue.follow_ups.append(queue.follow_ups[0])  # the queue delivers at least once
    assert await drain(queue, face, ledger) == ["completed", "completed"]
    assert face.events == 1


async def test_an_unknown_key_is_recorded_and_acknowledged_with_one_vault_call() -> None:
    keys = _keys(V1, V2)
    service, ledger, queue, _face = _service(keys)
    event = _rotation(V2)
    event["data"]["Id"] = f"https://{VAULT}.vault.azure.net/keys/gone/{V2}"
    event["data"]["ObjectName"] = event["subject"] = "gone"
    outcome = await service.handle(event)
    assert (outcome.status, outcome.detail) == (REJECTED, "KEY_NOT_FOUND")
    assert (queue.sent, queue.follow_ups, ledger.handled) == ([], [], set())
    (record,) = ledger.rejected
    assert record.reason == "KEY_NOT_FOUND"
    assert record.event_id == "ev-1"


async def test_an_unknown_version_is_recorded_and_acknowledged() -> None:
    service, ledger, queue, _ = _service(_keys(V1, V2))
    outcome = await service.handle(_rotation(V3))
    assert (outcome.status, outcome.detail) == (REJECTED, "VERSION_NOT_FOUND")
    assert (queue.sent, queue.follow_ups) == ([], [])
    assert [r.reason for r in ledger.rejected] == ["VERSION_NOT_FOUND"]


class _RefusingKeys(LocalKeyVersionSource):
    """A vault refusing to list the key's versions (which ``newest_enabled_version`` also
    lists, in the real adapter): whichever the target's resolution asks first refuses."""

    def __init__(self, error: ServiceError) -> None:
        super().__init__()
        self.error = error
        self.calls = 0

    async def newest_enabled_version(self, key_ref: str) -> str:
        self.calls += 1
        raise self.error

    async def versions(self, key_ref: str) -> Any:
        self.calls += 1
        raise self.error


async def test_a_permanent_403_is_recorded_and_acknowledged_a_transient_fault_raises() -> None:
    keys = _RefusingKeys(AccessDeniedError("Key Vault list versions: HTTP 403", status=403))
    service, ledger, queue, _ = _service(keys)  # type: ignore[arg-type]
    outcome = await service.handle(_rotation(V2))
    assert (outcome.status, outcome.detail) == (REJECTED, "ACCESS_DENIED")
    assert keys.calls == 1
    assert (queue.sent, queue.follow_ups) == ([], [])
    keys.error = TransientServiceError("Key Vault: HTTP 503", status=503)
    with pytest.raises(TransientServiceError):
        await service.handle(_rotation(V2, "ev-2"))
    assert [r.reason for r in ledger.rejected] == ["ACCESS_DENIED"]


async def test_a_permanent_refusal_in_the_follow_up_is_recorded_and_acknowledged() -> None:
    service, ledger, queue, _ = _service(_keys(V1, V2))
    await service.handle(_rotation(V2))
    refusing = Face(refuse=AccessDeniedError("ARM list accounts: HTTP 403", status=403))
    assert await drain(queue, refusing, ledger) == ["refused"]
    (record,) = ledger.rejected
    assert record.reason == "ACCESS_DENIED"
    assert "ev-1" in record.detail
    assert "dependents|Microsoft.KeyVault.KeyNewVersionCreated|ev-1" not in ledger.handled


async def test_a_transient_fault_in_the_follow_up_raises_for_the_queue_to_retry() -> None:
    service, ledger, queue, _ = _service(_keys(V1, V2))
    await service.handle(_rotation(V2))
    failing = Face(refuse=TransientServiceError("ARM: HTTP 503", status=503))
    with pytest.raises(TransientServiceError):
        await drain(queue, failing, ledger)
    assert ledger.rejected == []


async def test_the_last_failed_delivery_of_a_follow_up_is_recorded_as_rejected() -> None:
    """As a shard's job records its poison: a follow-up that keeps failing transiently is
    recorded (with a reason) on its last delivery, then raises to go to the poison queue."""
    service, ledger, queue, _ = _service(_keys(V1, V2))
    await service.handle(_rotation(V2))
    (body,) = queue.follow_ups
    failing = Face(refuse=TransientServiceError("ARM: HTTP 503", status=503))
    worker = DependentsFollowUpService(
        allow_list=VaultAllowList.parse(VAULT),
        ledger=ledger,
        dependents=failing,
        max_dequeue_count=3,
        now=lambda: T0,
    )
    for delivery in (1, 2):
        with pytest.raises(TransientServiceError):
            await worker.handle(body, message_id="m", dequeue_count=delivery)
        assert ledger.rejected == []

    # The last delivery, as the queue trigger hands it over (one queue, two kinds).
    trigger = QueueWorkerService(rewrap=None, follow_ups=worker, operations=None)  # type: ignore[arg-type]
    with pytest.raises(TransientServiceError):
        await trigger.handle(body, message_id="m", dequeue_count=3)

    (record,) = ledger.rejected
    assert record.reason == "RETRIES_EXHAUSTED"
    assert record.detail.startswith("poison:")
    assert "after 3 attempts" in record.detail
    assert "HTTP 503" in record.detail
    assert "dependents|Microsoft.KeyVault.KeyNewVersionCreated|ev-1" not in ledger.handled


async def test_same_event_twice_changes_nothing_the_second_time() -> None:
    service, _, queue, _face = _service(_keys(V1, V2))
    await service.handle(_rotation(V2))
    sent, follow_ups = list(queue.sent), list(queue.follow_ups)
    outcome = await service.handle(_rotation(V2))
    assert outcome.status == DUPLICATE
    assert (queue.sent, queue.follow_ups) == (sent, follow_ups)


async def test_a_late_event_for_an_older_version_targets_the_newest() -> None:
    service, _, queue, _ = _service(_keys(V1, V2, V3))
    await service.handle(_rotation(V3, "ev-3"))
    await service.handle(_rotation(V2, "ev-2"))
    assert {m.target_version for m in queue.sent} == {V3}


async def test_foreign_vault_is_recorded_and_nothing_is_done() -> None:
    keys = _keys(V1, V2)
    service, ledger, queue, _face = _service(keys)
    outcome = await service.handle(_rotation(V2, vault="evil-kv"))
    assert outcome.status == REJECTED
    assert outcome.detail == "FOREIGN_VAULT"
    assert (queue.sent, queue.follow_ups, ledger.handled) == ([], [], set())
    (record,) = ledger.rejected
    assert record.reason == "FOREIGN_VAULT"


@pytest.mark.parametrize("payload", [{}, [], "not json", {"id": 5}, {"eventType": 7, "data": []}])
async def test_malformed_payloads_are_acknowledged_not_raised(payload: object) -> None:
    service, ledger, queue, _ = _service(_keys(V1, V2))
    outcome = await service.handle(payload)
    assert outcome.status == REJECTED
    assert queue.sent == []
    assert len(ledger.rejected) == 1


async def test_secret_events_are_ignored() -> None:
    service, _ledger, queue, _ = _service(_keys(V1))
    event = _rotation(V1)
    event["eventType"] = "Microsoft.KeyVault.SecretNewVersionCreated"
    event["data"]["ObjectType"] = "Secret"
    event["data"]["Id"] = f"https://{VAULT}.vault.azure.net/secrets/orders/{V1}"
    outcome = await service.handle(event)
    assert outcome.status == IGNORED
    assert queue.sent == []


async def test_transient_fault_raises_and_is_not_remembered() -> None:
    keys = _keys(V1, V2)
    service, ledger, _, _ = _service(keys, Queue(fail=True))
    with pytest.raises(TransientServiceError):
        await service.handle(_rotation(V2))
    assert ledger.handled == set()


async def test_access_policy_change_reevaluates_the_vault() -> None:
    service, ledger, queue, face = _service(_keys(V1))
    event = {
        "id": "ap-1", "topic": ARM_ID, "subject": VAULT,
        "eventType": "Microsoft.KeyVault.VaultAccessPolicyChanged",
        "eventTime": "2026-11-29T02:00:00Z",
        "data": {"Id": f"https://{VAULT}.vault.azure.net/", "VaultName": VAULT,
                 "ObjectType": "Vault", "ObjectName": VAULT, "Version": None},
        "dataVersion": "1", "metadataVersion": "1",
    }  # fmt: skip
    outcome = await service.handle(event)
    assert outcome.status == HANDLED, outcome
    assert queue.sent == []
    await drain(queue, face, ledger)
    assert face.calls == [("reevaluate", AccessScope(vault_name=VAULT, key_name=None))]


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=5)
    ),
    max_leaves=20,
)
_FIELDS = [
    "id",
    "topic",
    "subject",
    "eventType",
    "eventTime",
    "data",
    "dataVersion",
    "source",
    "type",
]
_DATA_FIELDS = ["Id", "VaultName", "ObjectType", "ObjectName", "Version", "NBF", "EXP"]


@st.composite
def _mutated_rotation(draw: st.DrawFn) -> dict[str, Any]:
    """A valid rotation event with one to three fields replaced by arbitrary JSON values."""
    event = _rotation(V2, event_id=draw(st.text(min_size=1, max_size=8)))
    for _ in range(draw(st.integers(1, 3))):
        if draw(st.booleans()):
            event[draw(st.sampled_from(_FIELDS))] = draw(_JSON)
        elif isinstance(event.get("data"), dict):
            event["data"][draw(st.sampled_from(_DATA_FIELDS))] = draw(_JSON)
    return event


def _object_type_accepted(value: Any) -> bool:
    if value is None or (isinstance(value, str) and not value.strip()):
        return True
    return isinstance(value, str) and value.strip().lower() == "key"


def _is_unchanged_valid(event: dict[str, Any]) -> bool:
    data = event.get("data")
    return (
        event.get("eventType") == "Microsoft.KeyVault.KeyNewVersionCreated"
        and event.get("topic") == ARM_ID
        and isinstance(data, dict)
        and data.get("Id") == f"{KEY_REF}/{V2}"
        and data.get("VaultName") == VAULT
        and data.get("ObjectName") == "orders"
        and data.get("Version") == V2
        # ObjectType is redundant with the event type; the parser accepts it absent, null or
        # blank (blank text counts as absent, shared.events._fields), and otherwise "key"
        # case/space-insensitively.
        and _object_type_accepted(data.get("ObjectType"))
    )


@settings(max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(_JSON, _mutated_rotation()))
def test_fuzzed_payloads_never_escape_and_invalid_ones_change_nothing(payload: Any) -> None:
    import asyncio

    service, ledger, queue, _face = _service(_keys(V1, V2))
    outcome = asyncio.run(service.handle(payload))
    assert outcome.status in {HANDLED, REJECTED, IGNORED}
    if outcome.status != HANDLED:
        assert (queue.sent, queue.follow_ups, ledger.handled) == ([], [], set())
    else:
        # Only an event that still says "orders got V2 in contoso-kv" may act, and then it
        # plans exactly the confirmed newest version.
        assert isinstance(payload, dict)
        assert _is_unchanged_valid(payload) or payload.get("eventType") != (
            "Microsoft.KeyVault.KeyNewVersionCreated"
        )
        assert {m.target_version for m in queue.sent} <= {V2}
