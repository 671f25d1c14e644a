"""(g) ``GET /api/status`` through HTTP: the local Functions host as ``make demo`` runs it.

A host (``python -m devtools.localhost``) per DEK table (size), each in its own process with
the app settings of that table, all up at once, timers off (a sweep firing mid-measurement
would share the host's loop); queue pollers run as in the demo (they run the verification
pass's slices). Latency is measured by this process with one aiohttp session (keep-alive,
as a monitoring client would), one call after another, alternating between the hosts, after
a few unmeasured calls (the first builds the app's context: credential, clients).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp

from bench._cp_measure import latency_figures, warmup_calls
from bench._cp_world import wait_for
from bench._wire import ROOT
from devtools.emulator.client import EmulatorClient
from devtools.emulator.entra import admin_headers

HOST_START_SECONDS = 120.0


@contextlib.contextmanager
def local_host(settings: dict[str, str]) -> Iterator[dict[str, Any]]:
    """A local Functions host with ``settings`` (timers off, queue pollers on); yields its
    ready info (``url``, ``master_key``, ``function_key``)."""
    with tempfile.TemporaryDirectory(prefix="keyward-gbench-host-") as tmp:
        settings_file, ready = Path(tmp) / "local.settings.json", Path(tmp) / "ready.json"
        settings_file.write_text(json.dumps({"IsEncrypted": False, "Values": settings}))
        env = {k: v for k, v in os.environ.items() if not k.startswith(("KEYWARD_", "AZURE_"))}
        env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
        log_path = Path(tmp) / "host.log"
        with log_path.open("wb") as log:
            host = subprocess.Popen(
                [sys.executable, "-m", "devtools.localhost", "--port", "0", "--no-timers",
                 "--settings", str(settings_file), "--ready-file", str(ready)],
                cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip
            try:
                yield wait_for(ready, HOST_START_SECONDS)
            except Exception as error:
                tail = log_path.read_text(errors="replace")[-3000:]
                raise RuntimeError(f"local host: {error}\n{tail}") from error
            finally:
                host.terminate()
                try:
                    host.wait(15)
                except subprocess.TimeoutExpired:
                    host.kill()
                    host.wait(15)


def status_over_http(settings: dict[str, dict[str, str]], calls: int) -> dict[str, Any]:
    """A host per size of ``settings`` (``{size: app settings}``), all up at once; ``calls``
    GET /api/status to each, alternating between them call by call; the hosts stopped."""
    with contextlib.ExitStack() as stack:
        hosts = {size: stack.enter_context(local_host(s)) for size, s in settings.items()}
        headers = _reader_headers(next(iter(settings.values())))
        return asyncio.run(_time_calls(hosts, calls, headers))


def _reader_headers(settings: dict[str, str]) -> dict[str, str]:
    """A reader's token from the emulator's tenant (the admin API's ``KEYWARD_ADMIN_*``)."""
    client = EmulatorClient(settings["KEYWARD_ADMIN_AUTHORITY"], settings["KEYWARD_CA_BUNDLE"])
    try:
        return admin_headers(client, "reader", kind="app")
    finally:
        client.close()


def invoke_timer(info: dict[str, Any], name: str) -> None:
    """Run timer function ``name`` now, through the host's admin API (master key)."""
    request = urllib.request.Request(
        f"{info['url']}/admin/functions/{name}",
        data=b"{}",
        headers={"x-functions-key": info["master_key"], "Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=300) as response:
        if response.status != 202:
            raise RuntimeError(f"POST /admin/functions/{name} answered {response.status}")


async def _time_calls(
    hosts: dict[str, dict[str, Any]], calls: int, headers: dict[str, str]
) -> dict[str, Any]:
    sizes = list(hosts)
    latencies: dict[str, list[float]] = {size: [] for size in sizes}
    sizes_seen: dict[str, int] = dict.fromkeys(sizes, 0)
    bodies: dict[str, Any] = {}
    warmup = warmup_calls(calls)
    async with aiohttp.ClientSession() as session:
        for index in range(warmup + calls):
            for size in sizes if index % 2 == 0 else sizes[::-1]:
                info = hosts[size]
                started = time.perf_counter()
                async with session.get(f"{info['url']}/api/status", headers=headers) as response:
                    raw = await response.read()
                elapsed = (time.perf_counter() - started) * 1000
                if response.status != 200:
                    raise RuntimeError(f"GET /api/status answered {response.status}: {raw[:500]!r}")
                if index >= warmup:
                    latencies[size].append(elapsed)
                    sizes_seen[size] = max(sizes_seen[size], len(raw))
                bodies[size] = json.loads(raw)
    return {
        size: {
            **latency_figures(latencies[size]),
            "status_codes": [200],
            "body_bytes": sizes_seen[size],
            "body_keys": sorted(bodies[size]),
            "jobs_returned": len(bodies[size].get("jobs", [])),
        }
        for size in sizes
    }
