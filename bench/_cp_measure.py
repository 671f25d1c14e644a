"""(g) measured jobs: a sweep and ``AdminService.status`` through the composition root.

Each runs in a fresh ``bench._cp_worker`` process that builds keyward's ``AppContext`` from
the same app settings the Functions host gets, so the sweep is the production ``SweepService``
with the production clients (managed identity from the emulator, the CA bundle, Azurite).

Requests are counted with the clients' own response hook (``devtools.traffic``): before
the context is built, the default ``raw_response_hook`` of azure-core's ``CustomHookPolicy``
(Tables, Key Vault) and of the Storage queue/blob ``StorageResponseHook`` becomes a
:class:`RequestTally`, so every HTTP attempt of every client this process builds is counted
(retries included), split by service and by table or queue.
"""

from __future__ import annotations

import os
import statistics
import time
from collections import Counter
from typing import Any
from urllib.parse import urlsplit

from devtools.traffic import TrafficCounter


class RequestTally:
    """A ``raw_response_hook``: requests and bytes per service, plus ``METHOD /resource``."""

    def __init__(self, storage_ports: dict[int, str]) -> None:
        self._ports = storage_ports
        self.by_service: dict[str, TrafficCounter] = {}
        self.by_resource: Counter[str] = Counter()

    def __call__(self, pipeline_response: Any) -> None:
        url = urlsplit(pipeline_response.http_request.url)
        service = self._ports.get(url.port or 0, "vault")
        self.by_service.setdefault(service, TrafficCounter())(pipeline_response)
        path = url.path.split("/")
        resource = (path[2] if len(path) > 2 else "").split("(")[0]
        self.by_resource[f"{service} {pipeline_response.http_request.method} {resource}"] += 1

    def reset(self) -> None:
        self.by_service.clear()
        self.by_resource.clear()

    def snapshot(self) -> dict[str, Any]:
        services = {name: c.snapshot() for name, c in self.by_service.items()}
        storage = [s for name, s in services.items() if name != "vault"]
        return {
            "storage_requests": sum(s.requests for s in storage),
            "storage_bytes": sum(s.total for s in storage),
            "vault_requests": services["vault"].requests if "vault" in services else 0,
            "by_resource": dict(sorted(self.by_resource.items())),
        }


def install_tally(storage_ports: dict[int, str]) -> RequestTally:
    """Make a new :class:`RequestTally` every client's default response hook (see above)."""
    from azure.core.pipeline.policies import CustomHookPolicy
    from azure.storage.blob._shared.policies_async import AsyncStorageResponseHook as BlobHook
    from azure.storage.queue._shared.policies_async import AsyncStorageResponseHook as QueueHook

    tally = RequestTally(storage_ports)
    for policy in (CustomHookPolicy, BlobHook, QueueHook):
        original = policy.__init__

        def patched(self: Any, *args: Any, _original: Any = original, **kwargs: Any) -> None:
            kwargs.setdefault("raw_response_hook", tally)
            _original(self, *args, **kwargs)

        policy.__init__ = patched  # type: ignore[method-assign]
    return tally


async def _context(spec: dict[str, Any]) -> tuple[Any, RequestTally]:
    settings: dict[str, str] = spec["settings"]
    tally = install_tally({int(port): name for port, name in spec["storage_ports"].items()})
    os.environ.update(settings)  # DefaultAzureCredential reads IDENTITY_* from here
    from shared.composition import AppContext
    from shared.settings import Settings

    return await AppContext.build(Settings.from_env(settings)), tally


async def sweep_job(spec: dict[str, Any]) -> dict[str, Any]:
    """``spec["repeats"]`` sweeps in one process (the first one cold: tokens, connections),
    each with its wall time and requests."""
    context, tally = await _context(spec)
    runs: list[dict[str, Any]] = []
    try:
        for _ in range(int(spec.get("repeats", 3))):
            tally.reset()
            sweep = context.sweep()
            started = time.perf_counter()
            report = await sweep.run()
            seconds = time.perf_counter() - started
            runs.append(
                {
                    "seconds": round(seconds, 4),
                    **tally.snapshot(),
                    "keys_checked": report.keys_checked,
                    "jobs_started": len(report.jobs_started),
                    "jobs_resumed": len(report.jobs_resumed),
                    "jobs_retried": len(report.jobs_retried),
                    "problems": report.problems[:5],
                    "log_line": report.log_line(),
                }
            )
    finally:
        await context.aclose()
    return {"runs": runs, "shards": list(context.shards)}


async def status_job(spec: dict[str, Any]) -> dict[str, Any]:
    """``spec["calls"]`` calls of ``AdminService.status()`` (defaults: first page), after
    a few unmeasured ones (:func:`warmup_calls`); latency and Storage requests per call."""
    context, tally = await _context(spec)
    warmup = warmup_calls(int(spec["calls"]))
    latencies: list[float] = []
    requests: list[int] = []
    body: Any = None
    try:
        admin = context.admin()
        for index in range(warmup + int(spec["calls"])):
            tally.reset()
            started = time.perf_counter()
            body = await admin.status()
            elapsed = time.perf_counter() - started
            if index >= warmup:
                latencies.append(elapsed * 1000)
                requests.append(tally.snapshot()["storage_requests"])
        resources = tally.snapshot()["by_resource"]
    finally:
        await context.aclose()
    return {
        **latency_figures(latencies),
        "storage_requests_per_call": statistics.median(requests),
        "by_resource_last_call": resources,
        "body_keys": sorted(body) if isinstance(body, dict) else [],
        "jobs_returned": len(body.get("jobs", [])) if isinstance(body, dict) else 0,
    }


def warmup_calls(calls: int) -> int:
    """Unmeasured calls before ``calls`` measured ones (none for a probe of a few calls)."""
    return 3 if calls >= 10 else 0


def latency_figures(latencies_ms: list[float]) -> dict[str, Any]:
    """Median and p95 (nearest rank) of a list of latencies in ms."""
    ordered = sorted(latencies_ms)
    p95 = ordered[max(0, -(-len(ordered) * 95 // 100) - 1)] if ordered else float("nan")
    return {
        "calls": len(ordered),
        "median_ms": round(statistics.median(ordered), 2) if ordered else float("nan"),
        "p95_ms": round(p95, 2),
        "max_ms": round(ordered[-1], 2) if ordered else float("nan"),
        "all_ms": [round(v, 2) for v in latencies_ms],
    }
