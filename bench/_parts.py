"""Worker job for (c)'s breakdown: CPU per call of the pieces one DEK's rewrap is made of.

Measured in one fresh process against the unthrottled emulator, each piece alone in a loop
(``time.process_time`` over ``n`` calls, median of ``rounds``):

* ``wrap_sdk``: ``AsyncKeyVaultAdapter``'s wrap (the SDK's aio ``CryptographyClient.wrap_key``,
  local with the public key), what the engine calls today;
* ``wrap_local``: the same RSA-OAEP-256 public-key wrap with ``LocalRsaWrapper`` (``cryptography``
  directly);
* ``kcv``: the DEK's key check value;
* ``unwrap_lean``: the lean REST unwrap, ``concurrency`` in flight (as the engine keeps them);
* ``unwrap_floor``: a lower bound for any asyncio HTTPS client here: the same unwrap request
  written by hand on ``asyncio`` streams (one kept-alive TLS connection per lane, JSON body and
  base64 per call, status/headers/body read with ``readuntil``/``readexactly``), no error
  handling. Not a client keyward could ship as is; it shows how much of ``unwrap_lean`` is
  aiohttp rather than TLS and the event loop.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import ssl
import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any

from devtools.emulator.credential import AsyncEmulatorCredential
from shared.adapters import AsyncKeyVaultAdapter
from shared.adapters._keyvault_common import API_VERSION
from shared.crypto import DataKey, LocalRsaWrapper, VaultAllowList
from shared.rewrap import DEFAULT_WORKERS


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


_CONTENT_LENGTH = re.compile(rb"(?i)\r\ncontent-length: *(\d+)")


async def _floor_unwrap_ms(
    world: dict[str, Any], kid: str, wrapped: bytes, n: int, rounds: int, width: int
) -> float:
    host, port = world["vault_url"].split("://", 1)[1].rsplit(":", 1)
    path = kid.split("://", 1)[1].split("/", 1)[1]
    credential = AsyncEmulatorCredential(world["object_id"])
    token = (await credential.get_token("https://vault.azure.net/.default")).token
    context = ssl.create_default_context(cafile=world["ca_path"])
    lanes = [await asyncio.open_connection(host, int(port), ssl=context) for _ in range(width)]

    async def lane(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, count: int) -> None:
        for _ in range(count):
            value = base64.urlsafe_b64encode(wrapped).rstrip(b"=").decode()
            body = json.dumps({"alg": "RSA-OAEP-256", "value": value}).encode()
            head = (
                f"POST /{path}/unwrapkey?api-version={API_VERSION} HTTP/1.1\r\n"
                f"Host: {host}:{port}\r\nAuthorization: Bearer {token}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
            )
            writer.write(head.encode() + body)
            answer = await reader.readuntil(b"\r\n\r\n")
            match = _CONTENT_LENGTH.search(answer)
            if not answer.startswith(b"HTTP/1.1 200") or match is None:
                raise RuntimeError(f"unexpected answer: {answer[:60]!r}")
            got = json.loads(await reader.readexactly(int(match[1])))["value"]
            base64.urlsafe_b64decode(got + "=" * (-len(got) % 4))

    try:
        samples = []
        for _ in range(rounds + 1):  # the first round warms the connections up
            cpu = time.process_time()
            await asyncio.gather(*(lane(r, w, n // width) for r, w in lanes))
            samples.append((time.process_time() - cpu) / (n // width * width) * 1000)
        return round(statistics.median(samples[1:]), 4)
    finally:
        for _, writer in lanes:
            writer.close()


async def parts_job(spec: dict[str, Any]) -> dict[str, Any]:
    world = spec["world"]
    n, rounds = int(spec.get("n", 2000)), int(spec.get("rounds", 3))
    concurrency = DEFAULT_WORKERS  # in flight as the engine keeps them, whose CPU this splits
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
            "unwrap_floor_ms": await _floor_unwrap_ms(world, kid, wrapped, n, rounds, concurrency),
            "n": n,
            "rounds": rounds,
            "concurrency": concurrency,
        }
    finally:
        await adapter.close()
