"""(g) measured jobs: sweeps and ``AdminService.status`` through the composition root.

They run in a fresh ``bench._cp_worker`` process that builds keyward's ``AppContext`` (one
per size) from the same app settings the Functions host gets, so the sweep is the
production ``SweepService`` with the production clients (managed identity from the
emulator, the CA bundle, Azurite).

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


async def paired_job(spec: dict[str, Any]) -> dict[str, Any]:
    """Per size of ``spec["settings"]`` (``{size: app settings}``), one ``AppContext`` in
    this process; then ``spec["sweeps"]`` sweeps and ``spec["calls"]`` calls of
    ``AdminService.status()`` (defaults: the first page) per size, alternating between the
    sizes call by call (and which one goes first), so both see the same moment's load. The
    first sweep of each size is cold (token, connections); status calls start after a few
    unmeasured ones (:func:`warmup_calls`)."""
    tally = install_tally({int(port): name for port, name in spec["storage_ports"].items()})
    settings: dict[str, dict[str, str]] = spec["settings"]
    os.environ.update(next(iter(settings.values())))  # IDENTITY_* for DefaultAzureCredential
    from shared.composition import AppContext
    from shared.settings import Settings

    contexts = {size: await AppContext.build(Settings.from_env(s)) for size, s in settings.items()}
    sizes = list(contexts)
    sweeps: dict[str, list[dict[str, Any]]] = {size: [] for size in sizes}
    latencies: dict[str, list[float]] = {size: [] for size in sizes}
    requests: dict[str, list[int]] = {size: [] for size in sizes}
    bodies: dict[str, Any] = {}
    resources: dict[str, Any] = {}
    try:
        for index in range(int(spec["sweeps"])):
            for size in sizes if index % 2 == 0 else sizes[::-1]:
                sweeps[size].append(await _sweep(contexts[size], tally))
        admins = {size: context.admin() for size, context in contexts.items()}
        warmup = warmup_calls(int(spec["calls"]))
        for index in range(warmup + int(spec["calls"])):
            for size in sizes if index % 2 == 0 else sizes[::-1]:
                tally.reset()
                started = time.perf_counter()
                bodies[size] = await admins[size].status()
                elapsed = time.perf_counter() - started
                if index >= warmup:
                    latencies[size].append(elapsed * 1000)
                    requests[size].append(tally.snapshot()["storage_requests"])
                    resources[size] = tally.snapshot()["by_resource"]
    finally:
        for context in contexts.values():
            await context.aclose()
    return {
        size: {
            "sweep": {"runs": sweeps[size], "shards": list(contexts[size].shards)},
            "status_in_process": {
                **latency_figures(latencies[size]),
                "storage_requests_per_call": statistics.median(requests[size]),
                "by_resource_last_call": resources[size],
                "body_keys": sorted(bodies[size]),
                "jobs_returned": len(bodies[size].get("jobs", [])),
            },
        }
        for size in sizes
    }


async def _sweep(context: Any, tally: RequestTally) -> dict[str, Any]:
    tally.reset()
    sweep = context.sweep()
    started = time.perf_counter()
    report = await sweep.run()
    seconds = time.perf_counter() - started
    return {
        "seconds": round(seconds, 4),
        **tally.snapshot(),
        "keys_checked": report.keys_checked,
        "jobs_started": len(report.jobs_started),
        "jobs_resumed": len(report.jobs_resumed),
        "jobs_retried": len(report.jobs_retried),
        "problems": report.problems[:5],
        "log_line": report.log_line(),
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
