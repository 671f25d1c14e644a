"""The one ARM pace: at most N requests start in any one-second window, on a fake clock."""

from __future__ import annotations

import pytest

from shared.adapters import arm
from shared.adapters.arm import ArmClients, ArmPacer, PacingPolicy


async def test_at_most_n_requests_start_in_any_second(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [100.0]
    slept: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    monkeypatch.setattr(arm.asyncio, "sleep", fake_sleep)
    pacer = ArmPacer(5, clock=lambda: now[0])
    starts = []
    for _ in range(12):
        await pacer.wait()
        starts.append(now[0])
    assert pacer.sent == 12
    assert starts[:5] == [100.0] * 5, "a burst up to the budget goes at once"
    for i in range(len(starts)):
        window = [s for s in starts if starts[i] <= s < starts[i] + 1.0]
        assert len(window) <= 5
    assert starts[-1] - starts[0] >= 2.0, "12 requests at 5/s span more than two seconds"
    with pytest.raises(ValueError):
        ArmPacer(0)


def test_every_client_gets_its_own_pipeline_policies() -> None:
    """A policy's ``next`` belongs to one pipeline: shared instances would send one client's
    requests down another's chain (found when a refused query left requests unauthenticated)."""
    pacer = ArmPacer(10)
    clients = ArmClients(object(), {"per_call_policies": [PacingPolicy(pacer)]}, pacer=pacer)  # type: ignore[arg-type]
    first, second = clients._client_kwargs(), clients._client_kwargs()
    assert first["per_call_policies"][0] is not second["per_call_policies"][0]
    assert first["per_retry_policies"][0] is not second["per_retry_policies"][0]
    assert isinstance(first["per_retry_policies"][0], PacingPolicy)
