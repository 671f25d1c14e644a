"""The two timers are isolated (issue 12): the rewrap reconciliation (``sweep``) and the
revocation verdicts (``dependents_sweep``) are separate functions, so a failing (or slow)
reconciliation never keeps a Face account from being flagged, and a failing Face inventory
never keeps a missed rotation from being rewrapped.

Both functions run through the app's real bindings, against Azurite and the emulator (Key
Vault, ARM, the managed identity endpoint), at the same time. Each failure is a real one:
the queue the reconciliation sends to is gone; ARM names a ``nextLink`` on a foreign origin
(the emulator's fault injection), which keyward's ARM clients refuse.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from typing import Any

import pytest

from devtools.emulator.arm_client import ArmControl, cmk_encryption
from devtools.emulator.state import DEFAULT_SUBSCRIPTION_ID
from devtools.localhost import bindings
from shared.composition import context_for_current_loop, reset_contexts
from shared.errors import ForeignOriginError, ServiceError
from tests.conftest import indexed_functions
from tests.e2e.conftest import Stack, call
from tests.e2e.test_rotation_flow import _seed, _wait_for_all_at

pytestmark = [pytest.mark.azurite, pytest.mark.emulator]

GUARDED_KEY = "guarded"


@pytest.fixture
async def face_stack(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> Stack:
    """The stack with one Face account on ``GUARDED_KEY``, in a resource group of its own
    (the inventory is scoped to it), and keyward's Face checks switched on, listing accounts
    per subscription."""
    await call(stack.key_client.create_rsa_key, GUARDED_KEY, size=2048)
    arm = ArmControl(stack.emulator.url, stack.emulator.ca_path)
    group = "kwiso-" + uuid.uuid4().hex[:10]
    account = await call(
        arm.seed_account,
        f"face-{group}",
        resource_group=group,
        identity="SystemAssigned",
        encryption=cmk_encryption(stack.vault.url + "/", GUARDED_KEY, ""),
    )
    await call(
        stack.emulator.client.set_access_policy,
        stack.vault.name,
        account["identity"]["principalId"],
        ["get", "wrapKey", "unwrapKey"],
    )
    face = {
        "KEYWARD_FACE_SUBSCRIPTIONS": DEFAULT_SUBSCRIPTION_ID,
        "KEYWARD_FACE_RESOURCE_GROUPS": group,
        "KEYWARD_ARM_ENDPOINT": stack.emulator.url,
        # The per-subscription listing: its nextLink is what the fault injection below turns
        # untrustworthy (a Resource Graph query pages by skipToken, not by a link).
        "KEYWARD_RESOURCE_GRAPH": "false",
    }
    for name, value in face.items():
        monkeypatch.setenv(name, value)
    stack.settings.update(face)
    for context in reset_contexts():
        await context.aclose()
    return stack


def _timer() -> Any:
    return bindings.timer_input(past_due=False, last=None, next_=dt.datetime.now(dt.UTC))


async def _both_sweeps() -> dict[str, BaseException | None]:
    """Fire both timers at once, as the host may; each one's outcome."""
    functions = indexed_functions()
    names = ("sweep", "dependents_sweep")
    outcomes = await asyncio.gather(
        *(
            bindings.with_context(name, functions[name].get_user_function())(_timer())
            for name in names
        ),
        return_exceptions=True,
    )
    return dict(zip(names, outcomes, strict=True))


async def _verdicts() -> list[str]:
    context = await context_for_current_loop()
    flags = (await context.dependents.status(10))["face_flags"].flags
    return [str(flag["status"]) for flag in flags]


async def test_a_failing_reconciliation_does_not_keep_a_revocation_from_being_flagged(
    face_stack: Stack,
) -> None:
    stack = face_stack
    store, vault_keys, _ = await _seed(stack, "unreconciled")
    queue = (await context_for_current_loop()).queue._queue
    try:
        healthy = await _both_sweeps()
        assert healthy == {"sweep": None, "dependents_sweep": None}
        assert await _verdicts() == ["OK"]

        # A rotation is missed (no subscription: no event), and the reconciliation fails: the
        # queue it must put the missed job on is gone.
        await call(stack.key_client.rotate_key, "unreconciled")
        await queue.delete_queue()
        await call(stack.key_client.update_key_properties, GUARDED_KEY, enabled=False)
        outcomes = await _both_sweeps()

        assert isinstance(outcomes["sweep"], ServiceError)
        assert outcomes["dependents_sweep"] is None
        assert await _verdicts() == ["ACCESS_LOST"], "the revocation was flagged all the same"
    finally:
        await queue.create_queue()  # the next tests of this stack use it
        await store.close()
        await call(vault_keys.close)


async def test_a_failing_revocation_sweep_does_not_keep_a_missed_rotation_from_a_rewrap(
    face_stack: Stack,
) -> None:
    stack = face_stack
    store, vault_keys, key_ref = await _seed(stack, "missed")
    try:
        rotated = await call(stack.key_client.rotate_key, "missed")  # no subscription: no event
        arm = ArmControl(stack.emulator.url, stack.emulator.ca_path)
        await call(arm.set_next_link_origin, stack.vault.url)  # ARM's answer turns untrustworthy
        try:
            outcomes = await _both_sweeps()
        finally:
            await call(arm.set_next_link_origin, None)

        assert isinstance(outcomes["dependents_sweep"], ForeignOriginError)
        assert outcomes["sweep"] is None
        # The reconciliation queued the missed job; the host's worker ran it.
        await _wait_for_all_at(store, key_ref, rotated.properties.version)
    finally:
        await store.close()
        await call(vault_keys.close)
