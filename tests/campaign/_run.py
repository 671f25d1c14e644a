"""Running the retirement campaign: probe what the stores can show, then run the scenarios.

See ``_scenario`` for the steps, ``_oracle`` for what is checked, and docs/reliability.md.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from cryptography.hazmat.primitives.asymmetric import rsa

from devtools.emulator.process import RunningEmulator
from tests.campaign._oracle import Features, Figures
from tests.campaign._scenario import Scenario
from tests.campaign._vaults import EmulatorVault, LocalVault, Vault
from tests.campaign._world import World


def key_pool(size: int = 4) -> list[rsa.RSAPrivateKey]:
    return [rsa.generate_private_key(public_exponent=65537, key_size=2048) for _ in range(size)]


VaultFactory = Callable[[], Vault]


async def probe_features(connection_string: str, make_vault: VaultFactory) -> Features:
    """Ask the stores, by behaviour, what they can see today (not by version numbers)."""
    world = World(connection_string, make_vault())
    await world.open()
    try:
        version = world.rotate()
        await world.write_table(version, world.spellings[2], 1)
        counts = await world.table_store.version_counts(world.key_ref)
        spellings = sum(c.current for c in counts) == 1
        world.write_blob("probe", version, world.key_ref, snapshot_first=False)
        world.snapshot("probe")
        counts = await world.blob_store.version_counts(world.key_ref)
        immutable = sum(getattr(c, "immutable", 0) for c in counts) == 1
        return Features(spellings=spellings, immutable_copies=immutable)
    finally:
        await world.close()


async def campaign(
    connection_string: str,
    *,
    scenarios: int,
    seed: int,
    steps: int = 14,
    first: int = 0,
    force: Features | None = None,
    emulator: RunningEmulator | None = None,
) -> tuple[Figures, Features]:
    """Run scenarios ``first .. first + scenarios - 1`` of campaign ``seed``.

    ``emulator``: run the key's vault in keyward's emulator (the real Key Vault adapter)
    instead of in-process local keys. ``force`` switches scenario kinds on whatever the
    stores can show (to prove the oracle catches what the verdict cannot see yet: expect
    losses).
    """
    pool = key_pool()

    def make_vault() -> Vault:
        return EmulatorVault(emulator) if emulator is not None else LocalVault(pool)

    features = force or await probe_features(connection_string, make_vault)
    figures = Figures()
    for index in range(first, first + scenarios):
        world = World(connection_string, make_vault())
        await world.open()
        try:
            rng = random.Random(f"{seed}:{index}")
            await Scenario(world, rng, features, figures).run(steps)
            figures.scenarios += 1
        finally:
            await world.close()
    return figures, features
