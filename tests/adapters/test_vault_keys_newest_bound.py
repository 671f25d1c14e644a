"""The writers' newest-version refresh is the one the retirement verdict waits out.

``VaultKeysAdapter`` trusts "newest" for at most ``NEWEST_VERSION_SECONDS`` (the verdict's
wait counts on it: a longer one is refused), counted from when the list was *sent*: an
answer that arrives late may describe the vault from before a rotation. Offline: the
adapter's two calls are played by a stand-in (the emulator tests are in test_vault_keys.py).
"""

from __future__ import annotations

from typing import Any

import pytest

from shared.adapters.vault_keys import VaultKeysAdapter
from shared.crypto import VaultAllowList
from shared.errors import ConfigurationError
from shared.records import NEWEST_VERSION_SECONDS

KEY_REF = "https://contoso-kv.vault.azure.net/keys/k"


class SlowVault:
    """Answers the list call ``latency`` seconds (on the test's clock) after it was sent."""

    def __init__(self, clock: list[float], latency: float) -> None:
        self.clock, self.latency, self.lists = clock, latency, 0
        self.config = type("Config", (), {"check": VaultAllowList.parse("contoso-kv").check_key_id})

    async def newest_enabled_version(self, key_ref: str) -> str:
        self.lists += 1
        self.clock[0] += self.latency
        return "a" * 32

    async def wrapper(self, key_id: str, algorithm: Any = None) -> str:
        return key_id


def test_the_default_refresh_is_the_one_home_s_and_a_longer_one_is_refused() -> None:
    vault: Any = SlowVault([0.0], 0)
    assert f"newest_seconds={NEWEST_VERSION_SECONDS}" in repr(VaultKeysAdapter(vault))
    with pytest.raises(ConfigurationError, match="newest_seconds"):
        VaultKeysAdapter(vault, newest_seconds=NEWEST_VERSION_SECONDS + 1)


async def test_newest_is_trusted_from_when_the_list_was_sent() -> None:
    clock = [0.0]
    vault: Any = SlowVault(clock, latency=20.0)
    keys = VaultKeysAdapter(vault, monotonic=lambda: clock[0])
    await keys.newest(KEY_REF)  # sent at 0, answered at 20
    clock[0] = NEWEST_VERSION_SECONDS - 0.001
    await keys.newest(KEY_REF)
    assert vault.lists == 1
    clock[0] = NEWEST_VERSION_SECONDS  # 60 s after the send, 40 s after the answer
    await keys.newest(KEY_REF)
    assert vault.lists == 2
