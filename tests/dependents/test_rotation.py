"""rotation_follow_up: re-point only when allowed and the new version is usable."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from shared.dependents import KeyFacts, KeyPresence, RotationAction, rotation_follow_up
from tests.dependents.conftest import NEW, NOW, OLD, account, key, version

A = RotationAction


@pytest.mark.parametrize(
    ("name", "key_version", "key_facts", "allowed", "action"),
    [
        ("pinned to old, allowed", OLD, key(), True, A.REPOINT),
        ("pinned to old, not allowed", OLD, key(), False, A.FLAG_STALE),
        ("unpinned follows latest", None, key(), True, A.NONE),
        ("already current", NEW, key(), True, A.NONE),
        (
            "new version disabled",
            OLD,
            key(version(OLD), version(NEW, enabled=False)),
            True,
            A.FLAG_STALE,
        ),
        (
            "new version lacks unwrapKey",
            OLD,
            key(version(OLD), version(NEW, key_ops=("wrapKey",))),
            True,
            A.FLAG_STALE,
        ),
        (
            "new version expired",
            OLD,
            key(version(OLD), version(NEW, exp=NOW - timedelta(days=1))),
            True,
            A.FLAG_STALE,
        ),
        (
            "new version not yet valid",
            OLD,
            key(version(OLD), version(NEW, nbf=NOW + timedelta(days=1))),
            True,
            A.FLAG_STALE,
        ),
        ("new version facts unknown", OLD, key(version(OLD)), True, A.FLAG_STALE),
        ("key deleted", OLD, KeyFacts(KeyPresence.DELETED), True, A.NONE),
        (
            "facts for another vault",
            OLD,
            replace(key(), kid=f"https://other-kv.vault.azure.net/keys/face-cmk/{NEW}"),
            True,
            A.NONE,
        ),
    ],
)
def test_rotation_follow_up(
    name: str, key_version: str | None, key_facts: KeyFacts, allowed: bool, action: RotationAction
) -> None:
    decision = rotation_follow_up(
        account(key_version=key_version), key_facts, NOW, repoint_allowed=allowed
    )
    assert decision.action is action, decision
    assert decision.reason
    if action is A.REPOINT:
        assert decision.target_version == NEW


def test_target_is_the_vaults_current_version_not_an_older_event() -> None:
    # An event for OLD arrives after the account was already moved to NEW: nothing to do.
    decision = rotation_follow_up(account(key_version=NEW), key(), NOW, repoint_allowed=True)
    assert decision.action is A.NONE
