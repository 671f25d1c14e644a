"""``keyward.dependents.verdict_changes`` counts a key-dependent resource's verdict when it
changes (a first verdict is a change), by kind and new verdict, and never a repeated one."""

from __future__ import annotations

import uuid
from dataclasses import replace

from devtools.localhost.telemetry import in_memory_telemetry
from shared.dependents import Status
from shared.events import AccessScope, FollowUpRotation
from tests.dependents.conftest import facts, key, version
from tests.services.test_dependent_kinds import WIDGET, WIDGET_RULES, Publisher, _service
from tests.services.test_dependents_once import KEY_REF, V1, V2, VAULT, Reader

METRIC = "keyward.dependents.verdict_changes"


async def test_a_verdict_change_is_counted_once_by_kind_and_new_verdict() -> None:
    memory = in_memory_telemetry()
    kind = f"widget{uuid.uuid4().hex[:8]}"  # a kind no other test counts
    rsa3072 = version(V2, key_size=3072)
    supported = facts(key=replace(key(version(V1), version(V2), current=V2), kid=f"{KEY_REF}/{V2}"))
    unsupported = facts(key=replace(key(version(V1), rsa3072, current=V2), kid=f"{KEY_REF}/{V2}"))
    reader = Reader(supported)
    service = _service(kind, WIDGET, replace(WIDGET_RULES, key_sizes=frozenset({2048})), reader,
                       Publisher())  # fmt: skip
    rotation = ([FollowUpRotation(KEY_REF, V2)], [AccessScope(VAULT, "face-cmk")])

    await service.on_key_event(*rotation)
    assert memory.total(METRIC, **{"keyward.kind": kind, "keyward.verdict": Status.OK.value}) == 1
    await service.on_key_event(*rotation)  # the same verdict again: no change
    assert memory.total(METRIC, **{"keyward.kind": kind}) == 1

    reader.answer = unsupported  # RSA 3072: this kind's rules refuse it
    await service.on_key_event(*rotation)
    assert memory.total(METRIC, **{"keyward.kind": kind}) == 2
    assert (
        memory.total(METRIC, **{"keyward.kind": kind, "keyward.verdict": Status.AT_RISK.value}) == 1
    )
