"""Worker job for (c)'s breakdown: CPU per call of the pieces one DEK's rewrap is made of.

Measured in one fresh process against the unthrottled emulator, each piece alone in a loop
(``time.process_time`` over ``n`` calls, median of ``rounds``):

* ``wrap_sdk``: ``AsyncKeyVaultAdapter``'s wrap (the SDK's aio ``CryptographyClient.wrap_key``,
  local with the public key), what the engine calls today;
* ``wrap_local``: the same RSA-OAEP-256 public-key wrap with ``LocalRsaWrapper`` (``cryptography``
  directly);
* ``kcv``: the DEK's key check value;
* ``unwrap_lean``: the lean REST unwrap, ``concurrency`` in flight (as the engine keeps them).
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any

from devtools.emulator.credential import AsyncEmulatorCredential
from shared.adapters import AsyncKeyVaultAdapter
from shared.crypto import DataKey, LocalRsaWrapper, VaultAllowList


async def _cpu_ms(n: int, rounds: int, one: Callable[[], Awaitable[object]], width: int) -> float:
    async def lane(count: int) -> None:
        for _ in range(count):
            await one()

    samples = []
    for _ in range(rounds):
        cpu = time.process_time()
        await asyncio.gather(*(lane(n // width) for _ in range(width)))
        samples.append((time.process_time() - cpu) / (n // width * width) * 1000)
    return round(statistics.median(samples), 4)


async def parts_job(spec: dict[str, Any]) -> dict[str, Any]:
    world = spec["world"]
    n, rounds, concurrency = int(spec.get("n", 2000)), int(spec.get("rounds", 3)), 32
    adapter = AsyncKeyVaultAdapter(
        AsyncEmulatorCredential(world["object_id"]),
        VaultAllowList.parse(f"{world['vault']}={world['vault_url']}"),
        ca_bundle=world["ca_path"],
        lean_unwrap=True,
    )
    try:
        version = await adapter.newest_enabled_version(world["key_ref"])
        kid = f"{world['key_ref']}/{version}"
        wrapper = await adapter.wrapper(kid)
        public = (await adapter.public_key(kid)).rsa_public_key
        assert public is not None
        local = LocalRsaWrapper(kid, public_key=public)
        dek = DataKey.generate()
        wrapped = await wrapper.wrap(dek)
        for _ in range(50):  # warm: key fetched, TLS connections open
            await wrapper.unwrap(wrapped)

        async def sdk_wrap() -> object:
            return await wrapper.wrap(dek)

        async def local_wrap() -> object:
            return local.wrap(dek)

        async def kcv() -> object:
            return dek.kcv

        async def unwrap() -> object:
            return await wrapper.unwrap(wrapped)

        return {
            "wrap_sdk_ms": await _cpu_ms(n, rounds, sdk_wrap, 1),
            "wrap_local_ms": await _cpu_ms(n, rounds, local_wrap, 1),
            "kcv_ms": await _cpu_ms(n, rounds, kcv, 1),
            "unwrap_lean_ms": await _cpu_ms(n, rounds, unwrap, concurrency),
            "n": n,
            "rounds": rounds,
            "concurrency": concurrency,
        }
    finally:
        await adapter.close()
