"""(g)'s figures as Markdown: the section ``(g) Flat control plane`` of docs/benchmarks.md.

Figures pool the interleaved rounds: a sweep figure is the median of every warm sweep of a
size (the first sweep of each worker process is cold: token, connections; reported apart),
a status figure the median and p95 of every measured call of a size. A ratio is the largest
size's figure over the smallest's; the target is at most :data:`TARGET_RATIO`.
"""

from __future__ import annotations

import statistics
from typing import Any

from bench._cp_measure import latency_figures

TARGET_RATIO = 1.2


def _verdict(ratio: float) -> str:
    return "**PASS**" if ratio <= TARGET_RATIO else "**MISS**"


def _pooled(rounds: list[dict[str, Any]], size: str) -> dict[str, Any]:
    entries = [r[size] for r in rounds if size in r]
    sweeps = [run for e in entries for run in e["sweep"]["runs"][1:]]
    cold = [e["sweep"]["runs"][0] for e in entries]
    http = [ms for e in entries if "status_http" in e for ms in e["status_http"]["all_ms"]]
    local = [ms for e in entries for ms in e["status_in_process"]["all_ms"]]
    return {
        "sweep_requests": statistics.median(r["storage_requests"] for r in sweeps),
        "sweep_seconds": statistics.median(r["seconds"] for r in sweeps),
        "sweep_vault_requests": statistics.median(r["vault_requests"] for r in sweeps),
        "sweep_cold_seconds": statistics.median(r["seconds"] for r in cold),
        "sweeps": len(sweeps),
        "sweep_resources": sweeps[-1]["by_resource"],
        "sweep_log": sweeps[-1]["log_line"],
        "http": latency_figures(http) if http else None,
        "local": latency_figures(local),
        "local_requests": statistics.median(
            e["status_in_process"]["storage_requests_per_call"] for e in entries
        ),
        "local_resources": entries[-1]["status_in_process"]["by_resource_last_call"],
        "jobs_returned": entries[-1]["status_in_process"]["jobs_returned"],
    }


def _row(label: str, small: float, large: float, fmt: str, unit: str) -> str:
    ratio = large / small if small else float("inf")
    return (
        f"| {label} | {format(small, fmt)}{unit} | {format(large, fmt)}{unit} | "
        f"{ratio:.2f} | <= {TARGET_RATIO} | {_verdict(ratio)} |"
    )


def render(everything: dict[str, Any]) -> str:
    meta, results = everything["meta"], everything["results"]
    sizes = sorted(int(s) for s in results["rounds"][0])
    lo, hi = str(sizes[0]), str(sizes[-1])
    small, large = _pooled(results["rounds"], lo), _pooled(results["rounds"], hi)
    alone = _pooled([{lo: results["alone"]}], lo) if results.get("alone") else None
    n = f"{int(lo):,}", f"{int(hi):,}"
    lines = [
        f"Command: `{meta['command']}`  ",
        f"Run: {meta['started']} to {meta['finished']} ({meta['seconds'] / 60:.1f} min); "
        f"{meta['machine']['nproc']} cores, {meta['machine']['memory_gib']} GiB  ",
        f"Load average (1/5/15 min) before: {' / '.join(map(str, meta['load_before']))}; "
        f"after: {' / '.join(map(str, meta['load_after']))}",
        "",
        f"| figure | at {n[0]} DEKs | at {n[1]} DEKs | ratio | target | verdict |",
        "|---|---|---|---|---|---|",
        _row(f"sweep: Storage requests (median of {small['sweeps']} / {large['sweeps']} warm "
             "sweeps)", small["sweep_requests"], large["sweep_requests"], ".0f", ""),
        _row("sweep: wall time (same sweeps)", small["sweep_seconds"] * 1000,
             large["sweep_seconds"] * 1000, ".1f", " ms"),
    ]  # fmt: skip
    if small["http"] and large["http"]:
        lines += [
            _row(f"`GET /api/status` over HTTP, median of {small['http']['calls']} calls",
                 small["http"]["median_ms"], large["http"]["median_ms"], ".1f", " ms"),
            _row("`GET /api/status` over HTTP, p95 (same calls)",
                 small["http"]["p95_ms"], large["http"]["p95_ms"], ".1f", " ms"),
        ]  # fmt: skip
    s_local, l_local = small["local"], large["local"]
    local_ratio = l_local["median_ms"] / s_local["median_ms"]
    requests_ratio = large["local_requests"] / max(small["local_requests"], 1)
    lines += [
        f"| `AdminService.status()` in process, median / p95 | {s_local['median_ms']:.1f} / "
        f"{s_local['p95_ms']:.1f} ms | {l_local['median_ms']:.1f} / {l_local['p95_ms']:.1f} ms | "
        f"{local_ratio:.2f} | (reported) | |",
        f"| Storage requests per status call (in process) | {small['local_requests']:.0f} | "
        f"{large['local_requests']:.0f} | {requests_ratio:.2f} | (reported) | |",
        f"| sweep: vault requests (list keys, versions) | {small['sweep_vault_requests']:.0f} | "
        f"{large['sweep_vault_requests']:.0f} | | (reported) | |",
    ]  # fmt: skip
    verify = results.get("verify") or {}
    for size in sorted(verify, key=int):
        v = verify[size]
        rate = v["deks_covered_per_second"]
        lines.append(
            f"| verification pass ({v['mode']}), one key ({v['deks_of_key']:,} DEKs) of the "
            f"{int(size):,}-DEK table | {rate if rate is not None else 'n/a'} DEKs/s "
            f"({v['seconds']} s, {v['status']}; "
            + (f"{v['storage_requests']} Storage requests; " if "storage_requests" in v else "")
            + (f"{v['wall_seconds']} s from the sweep; " if "wall_seconds" in v else "")
            + f"{v['scanned']:,} returned by the scan, {v['rewrapped']} rewrapped of "
            f"{v['stale_inserted']} written under the older version) | | | (reported) | |"
        )
    seeding = results["seeding"]
    for size, keys in (results.get("ranges") or {}).items():
        lines += [
            "",
            f"Rows the service sends for a pass's scan of each key, {int(size):,}-DEK table "
            "(`KeyRef` spellings range and `KeyVersion ne` the newest version; own rows kept): "
            + ", ".join(f"{k} {v['rows_sent']:,} ({v['own']} own, {v['pages']} pages)"
                        for k, v in keys.items())
            + ".",
        ]  # fmt: skip
    lines += [
        "",
        "Details: sweep Storage requests at the largest size, by `service METHOD resource`: "
        + ", ".join(f"{k} x{v}" for k, v in large["sweep_resources"].items())
        + f"; sweep log `{large['sweep_log']}`; cold (first) sweep of each process "
        f"{small['sweep_cold_seconds'] * 1000:.0f} / {large['sweep_cold_seconds'] * 1000:.0f} ms; "
        f"{small['jobs_returned']} jobs in the status body. "
        + (
            f"{n[0]} measured alone before the larger table existed: sweep "
            f"{alone['sweep_requests']:.0f} requests, {alone['sweep_seconds'] * 1000:.1f} ms; "
            f"status HTTP median {alone['http']['median_ms'] if alone['http'] else 'n/a'} ms. "
            if alone
            else ""
        )
        + "Seeding (not measured): "
        + "; ".join(
            f"{int(k):,} DEKs in {v['seconds']} s ({v['processes']} processes, load "
            f"{v['load_before'][0]} -> {v['load_after'][0]}, Azurite RSS after "
            f"{v['azurite_rss_mib']} MiB)"
            for k, v in sorted(seeding.items(), key=lambda kv: int(kv[0]))
        )
        + ". Load per round: "
        + "; ".join(
            ", ".join(f"{int(s):,}: {e['load_before'][0]} -> {e['load_after'][0]}"
                      for s, e in r.items())
            for r in results["rounds"]
        )
        + ".",
    ]  # fmt: skip
    return "\n".join(lines) + "\n"
