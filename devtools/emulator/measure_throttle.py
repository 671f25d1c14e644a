"""Measure the emulator's throttle: drive 2x a vault's budget and count what gets through.

    .venv/bin/python -m devtools.emulator.measure_throttle            # real limit, ~30 s
    .venv/bin/python -m devtools.emulator.measure_throttle --write-docs

Starts its own emulator subprocess, makes a vault with one RSA-2048 software key at Key
Vault's published budget (4,000 operations per 10 s), and offers unwrapKey requests at twice
that rate (800/s) over whole windows, on keep-alive TLS connections with a bearer token. It
reports the accepted rate against the budget, the 429 count and the ``Retry-After`` values;
``--write-docs`` rewrites the marked block in ``docs/emulator.md``. The test suite runs the
same load function at a small budget (``tests/emulator/test_keyvault_throttle.py``).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import ssl
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from devtools.emulator.auth import ALL_KEY_PERMISSIONS
from devtools.emulator.credential import EmulatorCredential
from devtools.emulator.process import ROOT, start_emulator, stop_emulator
from shared.crypto import rsa_public_key_from_jwk

DOCS = ROOT / "docs" / "emulator.md"
BEGIN = "<!-- measure_throttle:begin -->"
END = "<!-- measure_throttle:end -->"


@dataclass
class LoadResult:
    """What one load run saw."""

    offered: int = 0
    accepted: int = 0
    throttled: int = 0
    other: dict[int, int] = field(default_factory=dict)
    retry_after: set[str] = field(default_factory=set)
    elapsed: float = 0.0
    #: (seconds after the start when the request was sent, status) per request.
    sent: list[tuple[float, int]] = field(default_factory=list)

    def accepted_rate(self, seconds: float) -> float:
        return self.accepted / seconds

    def accepted_rate_in_windows(self, window: float) -> float:
        """Accepted per second among requests *sent* in the whole windows the run spanned.

        Under an even overload a sliding window accepts in bursts at the start of each window,
        so counting over a run that overran its schedule by a fraction of a window would
        overstate the rate; whole windows measured by send time do not.
        """
        last = max((t for t, _ in self.sent), default=0.0)
        windows = max(1, int(last / window + 0.05))  # the last send is just before the end
        span = windows * window
        accepted = sum(1 for t, status in self.sent if t < span and status == 200)
        return accepted / span


async def drive(
    url: str,
    body: dict[str, str],
    token: str,
    ca_path: str,
    *,
    rate: float,
    seconds: float,
    connections: int = 48,
) -> LoadResult:
    """POST ``body`` to ``url`` at ``rate`` per second for ``seconds``, evenly paced."""
    result = LoadResult()
    total = int(rate * seconds)
    context = ssl.create_default_context(cafile=ca_path)
    connector = aiohttp.TCPConnector(ssl=context, limit=connections)
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    payload = json.dumps(body).encode()
    next_index = 0
    async with aiohttp.ClientSession(connector=connector) as session:
        # Open the connections first so TLS handshakes do not eat into the first window; a
        # request without a token gets the 401 challenge, which the throttle does not charge.
        async def warm() -> None:
            async with session.get(url) as response:
                await response.read()

        await asyncio.gather(*(warm() for _ in range(connections)))
        loop = asyncio.get_running_loop()
        start = loop.time() + 0.1

        async def worker() -> None:
            nonlocal next_index
            while next_index < total:
                index = next_index
                next_index += 1
                delay = start + index / rate - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                sent_at = loop.time() - start
                async with session.post(url, data=payload, headers=headers) as response:
                    await response.read()
                    result.sent.append((sent_at, response.status))
                    result.offered += 1
                    if response.status == 200:
                        result.accepted += 1
                    elif response.status == 429:
                        result.throttled += 1
                        result.retry_after.add(response.headers.get("Retry-After", "<none>"))
                    else:
                        result.other[response.status] = result.other.get(response.status, 0) + 1

        await asyncio.gather(*(worker() for _ in range(connections)))
        result.elapsed = loop.time() - start
    return result


def _measure(seconds: float, multiple: float) -> tuple[LoadResult, dict[str, float]]:
    with tempfile.TemporaryDirectory(prefix="keyward-throttle-") as workdir:
        emulator = start_emulator(Path(workdir))
        try:
            client = emulator.client
            vault = client.create_vault("throttlemeasure")
            admin = str(client.create_principal()["object_id"])
            client.set_access_policy(vault["name"], admin, ALL_KEY_PERMISSIONS)
            bundle = client.create_key(vault["name"], "measured", size=2048)
            throttle = client.get_throttle(vault["name"])
            budget, window = float(throttle["budget"]), float(throttle["window_seconds"])
            jwk = bundle["key"]
            public = rsa_public_key_from_jwk(jwk["n"], jwk["e"])
            wrapped = public.encrypt(
                b"\x5a" * 32,
                padding.OAEP(padding.MGF1(hashes.SHA256()), hashes.SHA256(), None),
            )
            body = {
                "alg": "RSA-OAEP-256",
                "value": base64.urlsafe_b64encode(wrapped).rstrip(b"=").decode(),
            }
            token = EmulatorCredential(admin).get_token("https://vault.azure.net/.default").token
            result = asyncio.run(
                drive(
                    f"{jwk['kid']}/unwrapkey?api-version=2025-07-01",
                    body,
                    token,
                    emulator.ca_path,
                    rate=multiple * budget / window,
                    seconds=seconds,
                )
            )
            server = client.counters(vault["name"])["vault"]
            facts = {
                "budget": budget,
                "window": window,
                "server_accepted": float(server["ops"].get("unwrapKey", 0)),
                "server_throttled": float(server["throttled"]),
            }
            return result, facts
        finally:
            stop_emulator(emulator)


def _report(result: LoadResult, facts: dict[str, float], seconds: float, multiple: float) -> str:
    budget_rate = facts["budget"] / facts["window"]
    accepted_rate = result.accepted_rate_in_windows(facts["window"])
    deviation = (accepted_rate - budget_rate) / budget_rate * 100
    lines = [
        f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} with "
        "`.venv/bin/python -m devtools.emulator.measure_throttle --write-docs`:",
        "",
        "| quantity | value |",
        "|---|---|",
        f"| budget (RSA-2048 software) | {facts['budget']:.0f} per {facts['window']:.0f} s "
        f"= {budget_rate:.1f}/s |",
        f"| offered load | {multiple:.1f}x budget = {multiple * budget_rate:.0f}/s for "
        f"{seconds:.0f} s ({result.offered} unwrapKey requests, sent in "
        f"{result.elapsed:.1f} s) |",
        f"| accepted (200) | {result.accepted} in all; **{accepted_rate:.1f}/s** over the "
        f"whole windows sent, {deviation:+.2f}% vs budget |",
        f"| accepted per 10 s window (by send time) | {_per_window(result, facts['window'])} |",
        f"| refused (429) | {result.throttled}; Retry-After values seen: "
        f"{', '.join(sorted(result.retry_after)) or 'none'} s |",
        f"| other statuses | {result.other or 'none'} |",
        f"| server counters | {facts['server_accepted']:.0f} accepted, "
        f"{facts['server_throttled']:.0f} throttled |",
    ]
    return "\n".join(lines)


def _per_window(result: LoadResult, window: float) -> str:
    counts: dict[int, int] = {}
    for sent_at, status in result.sent:
        if status == 200:
            index = int(sent_at // window)
            counts[index] = counts.get(index, 0) + 1
    return ", ".join(str(counts[i]) for i in sorted(counts))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=30.0, help="whole 10 s windows")
    parser.add_argument("--multiple", type=float, default=2.0, help="load as a budget multiple")
    parser.add_argument("--write-docs", action="store_true", help=f"rewrite the block in {DOCS}")
    args = parser.parse_args(argv)
    result, facts = _measure(args.seconds, args.multiple)
    report = _report(result, facts, args.seconds, args.multiple)
    print(report)
    if args.write_docs:
        text = DOCS.read_text()
        head, _, rest = text.partition(BEGIN)
        _, _, tail = rest.partition(END)
        DOCS.write_text(f"{head}{BEGIN}\n{report}\n{END}{tail}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
