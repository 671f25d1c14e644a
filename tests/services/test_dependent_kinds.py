"""A second kind of key-dependent resource needs only its port: name, adapters, labels, rules.

A made-up "widget" kind (its own inventory, writer, labels and verdict rules) runs through
the same ``DependentService`` and ``AllDependents`` as Face: its events carry its own type
prefix and source, its flags show under its own status key, its rules decide which keys are
supported, and a key event evaluates each account of each kind once.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from shared.composition._dependents import KINDS
from shared.crypto import VaultAllowList
from shared.dependents import DependentKind, KindLabels, Reason, Status, VerdictRules
from shared.events import AccessScope, FollowUpRotation
from shared.services._all_dependents import AllDependents
from shared.services._dependent_effects import EffectRunner
from shared.services.dependents import DependentService
from tests.dependents.conftest import account, facts, key, version
from tests.services.test_dependents_once import (
    KEY_REF,
    NOW,
    V1,
    V2,
    VAULT,
    Inventory,
    Journal,
    Reader,
    Writer,
)

FACE = next(kind for kind in KINDS if kind.name == "face")
WIDGET = KindLabels(
    noun="Widget account",
    event_type_prefix="Keyward.WidgetAccount",
    event_source="/keyward/widget-accounts",
    flag_partition="widget",
    status_key="widget_flags",
)
#: Widgets also accept RSA 3072 (Face does not).
WIDGET_RULES = VerdictRules(key_sizes=frozenset({2048, 3072}), accepted="RSA 2048 or 3072")


class Publisher:
    def __init__(self) -> None:
        self.sent: list[tuple[str, str, str]] = []

    async def publish(
        self,
        *,
        event_type: str,
        source: str,
        subject: str,
        data: Mapping[str, object],
        event_id: str | None = None,
    ) -> None:
        self.sent.append((event_type, source, subject))


def _service(
    name: str, labels: KindLabels, rules: VerdictRules, reader: Reader, publisher: Publisher
) -> DependentService:
    vault = f"https://{VAULT}.vault.azure.net"
    accounts = [account(id=f"{name}-1", key_vault_uri=vault)]
    writer = Writer()
    kind = DependentKind(name, labels, Inventory(accounts), writer, rules)
    journal = Journal()
    effects = EffectRunner(journal, writer, publisher, labels=labels, clock=lambda: NOW)
    allow = VaultAllowList.parse(VAULT)
    return DependentService(kind, reader, journal, effects, allow_list=allow, clock=lambda: NOW)


async def test_each_kind_speaks_with_its_own_labels_and_rules() -> None:
    rsa3072 = version(V2, key_size=3072)
    answer = facts(key=replace(key(version(V1), rsa3072, current=V2), kid=f"{KEY_REF}/{V2}"))
    reader, publisher = Reader(answer), Publisher()
    face = _service("face", FACE.labels, FACE.rules, reader, publisher)
    widget = _service("widget", WIDGET, WIDGET_RULES, reader, publisher)
    both = AllDependents([face, widget], status_keys=["face_flags", "widget_flags"])

    await both.on_key_event([FollowUpRotation(KEY_REF, V2)], [AccessScope(VAULT, "face-cmk")])

    assert sorted(reader.reads) == ["face-1", "widget-1"]  # one evaluation per account
    assert sorted(publisher.sent) == [
        ("Keyward.FaceAccount.KeyAtRisk", "/keyward/face-accounts", "face-1"),
    ]  # RSA 3072 is unsupported for Face only; widgets accept it
    status = await both.status(10)
    assert list(status) == ["face_flags", "widget_flags"]
    (face_flag,) = status["face_flags"].flags
    assert face_flag["status"] == Status.AT_RISK.value
    assert face_flag["reasons"][0][0] == Reason.UNSUPPORTED_KEY_TYPE.value
    assert [f["status"] for f in status["widget_flags"].flags] == [Status.OK.value]
    assert not status["face_flags"].more
