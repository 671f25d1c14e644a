"""Markdown sections for (h), (i), (j), from the raw results ``bench._h_cli`` writes."""

from __future__ import annotations

from typing import Any

from bench._h_reads import PAYLOAD_BYTES as PAYLOAD


def _verdict(ok: bool) -> str:
    return "**PASS**" if ok else "**MISS**"


def _load(pair: Any) -> str:
    return " / ".join(str(x) for x in pair)


def _head(meta: dict[str, Any]) -> list[str]:
    return [
        f"Command: `{meta['command']}`  ",
        f"Run: {meta['started']} to {meta['finished']} ({meta['seconds'] / 60:.1f} min)  ",
        f"Load average (1/5/15 min) before: {_load(meta['load_before'])}; after: "
        f"{_load(meta['load_after'])} (2 cores, shared with other agents' test suites)",
        "",
    ]


def render_hierarchy(everything: dict[str, Any]) -> str:
    meta, result = everything["meta"], everything["results"]
    s, config, seeding = result["summary"], result["config"], result["seeding"]
    direct_n = config["direct_records"]
    lines = ["### (h) Rotation in hierarchy mode", "", *_head(meta)]
    lines += [
        "| figure | measured (median) | target | verdict |",
        "|---|---|---|---|",
        f"| wrapped keys rewrapped (one vault unwrap each), {config['records']:,} records under "
        f"{s['keks']:,} KEKs | {s['rewraps']:,.0f} | <= {min(s['keks'], 1000):,} | "
        f"{_verdict(s['rewraps_pass'])} |",
        f"| vault unwraps for the rotation (the rewraps plus each job's target proof) | "
        f"{s['unwraps']:,.0f} | <= {min(s['keks'], 1000):,} | {_verdict(s['unwraps_pass'])} |",
        f"| all vault requests for the rotation (emulator counters) | {s['vault_ops_total']:,.0f}"
        f" | <= {min(s['keks'], 1000):,} | {_verdict(s['ops_pass'])} |",
        f"| wall time, rotation to every shard's job `completed` | {s['completed_seconds']:.2f} s"
        f" ({', '.join(f'{x:.2f}' for x in s['completed_each'])}) | < 10 s | "
        f"{_verdict(s['time_pass'])} |",
        f"| direct mode, {direct_n:,} DEKs, same pipeline (measured) | "
        f"{s['direct_measured_seconds']:.1f} s ({s['direct_measured_rate']:.1f} DEKs/s) | "
        "(reported) | |",
        f"| direct mode, {config['records']:,} DEKs, extrapolated from (a): N / 189.4 DEKs/s | "
        f"{s['direct_from_a_seconds']:,.0f} s ({s['direct_from_a_seconds'] / 3600:.2f} h) | "
        "(reported) | |",
        f"| ratio direct / hierarchy, wall time (from (a); from the measured pipeline rate) | "
        f"{s['ratio_from_a']:,.0f}x; {s['ratio_from_pipeline']:,.0f}x | (reported) | |",
        f"| ratio direct / hierarchy, vault unwraps | {s['vault_ops_ratio']:,.0f}x | "
        "(reported) | |",
        "",
    ]
    runs = result["runs"]
    for index, run in enumerate(runs, 1):
        shards = "; ".join(
            f"`{name}` {j['status']}, scanned {j['scanned']:,}, rewrapped {j['rewrapped']:,}, "
            f"ended {j['finished_at'] - run['rotated_at']:.2f} s"
            for name, j in run["shards"].items()
        )
        lines.append(
            f"- run {index}: event reached keyward {run['event_at'] - run['rotated_at']:.2f} s "
            f"after the rotation call; {shards}; vault ops {run['vault']['ops']}, 429s "
            f"{run['vault']['throttled']}; host CPU {run['cpu_seconds']:.2f} s; load "
            f"{run['load_before'][0]} -> {run['load_after'][0]}"
        )
    lines += [
        "",
        f"Seeding (not measured): {seeding['records']:,} records and {seeding['keks']:,} KEKs "
        f"in {seeding['seconds']:.0f} s ({seeding['records'] / seeding['seconds']:,.0f} "
        f"records/s; load {seeding['load_before'][0]} -> {seeding['load_after'][0]}); mode row: "
        f"{seeding['mode_row']}. Checked afterwards: {result['verified']}.",
        "",
    ]
    return "\n".join(lines)


def render_reads(everything: dict[str, Any]) -> str:
    meta, result = everything["meta"], everything["results"]
    lines = ["### (i) Application reads", "", *_head(meta)]
    lines += [
        "| figure | measured (median) | target | verdict |",
        "|---|---|---|---|",
    ]
    for mode in ("direct", "hierarchy"):
        m = result["summary"][mode]
        lines.append(
            f"| {mode}: vault calls for {m['calls']:,} decrypts of {m['records']:,} records | "
            f"{m['vault_calls']:,} | <= {m['bound']:,} ({m['bound_text']}) | "
            f"{_verdict(m['vault_calls'] <= m['bound'])} |"
        )
    summary = result["summary"]
    rsa, aes, table = summary["rsa_us"], summary["aes_us"], summary["table_read_us"]
    for mode in ("direct", "hierarchy"):
        m = summary[mode]
        lines.append(
            f"| {mode}: CPU per decrypt, fresh reader (vault calls included) / warm cache | "
            f"{m['cpu_us']:.0f} us / {m['warm_cpu_us']:.0f} us = {m['cpu_us'] / rsa:.2f} / "
            f"{m['warm_cpu_us'] / rsa:.2f} x one RSA decrypt | (reported) | |"
        )
    lines += [
        f"| yardsticks, same run: one AES-256-GCM open ({PAYLOAD} B) / one RSA-2048 OAEP-256 "
        f"decrypt / one Table `get_entity` of a record row | {aes:.2f} us / {rsa:.0f} us / "
        f"{table:.0f} us | (reported) | |",
    ]
    for mode in ("direct", "hierarchy"):
        m = summary[mode]
        lines.append(
            f"| {mode}: CPU per decrypt beyond its Table read (fresh reader / warm cache) | "
            f"{m['cpu_us'] - table:.0f} us / {m['warm_cpu_us'] - table:.0f} us | (reported) | |"
        )
    lines += [""]
    for mode in ("direct", "hierarchy"):
        m, run = summary[mode], result["modes"][mode]
        lines.append(
            f"- {mode}: vault unwraps per repeat {m['vault_calls_each']} (a fresh reader each); "
            f"CPU per decrypt per repeat {m['cpu_each']} us; wall {m['wall_seconds']:.1f} s per "
            f"{m['calls']:,} calls; envelope stats of the last repeat {run['rounds'][-1]['stats']};"
            f" load {m['load'][0]} -> {m['load'][1]}"
        )
    lines += ["", *result.get("notes", []), ""]
    return "\n".join(lines)


def render_revocation(everything: dict[str, Any]) -> str:
    meta, result = everything["meta"], everything["results"]
    s = result["summary"]
    lines = ["### (j) Revocation latency in hierarchy mode", "", *_head(meta)]
    lines += [
        "| figure | measured | target | verdict |",
        "|---|---|---|---|",
        f"| disable the key -> first refused decrypt, KEK TTL {s['ttl']:g} s: median / max of "
        f"{s['repeats']} | {s['median']:.2f} s / {s['max']:.2f} s (each: "
        f"{', '.join(f'{x:.2f}' for x in s['each'])}) | <= {s['ttl'] + 1:g} s | "
        f"{_verdict(s['max'] <= s['ttl'] + 1)} |",
        f"| disable the key -> last successful decrypt (every later one refused): median / max "
        f"| {s['last_success_median']:.2f} s / {s['last_success_max']:.2f} s (each: "
        f"{', '.join(f'{x:.2f}' for x in s['last_success_each'])}) | <= {s['ttl'] + 1:g} s | "
        f"{_verdict(s['last_success_max'] <= s['ttl'] + 1)} |",
        "",
    ]
    for index, run in enumerate(result["runs"], 1):
        lines.append(
            f"- repeat {index}: warm-up {run['warmup']} s, {run['calls']} calls, disable call "
            f"{run['disable_call_seconds']} s, first refused {run['first_refused']} s, last "
            f"success {run['last_success']} s ({run['successes_after_disable']} successes after "
            f"the disable), errors {run['errors']}, vault unwraps {run['stats']['vault_unwraps']}"
            f"; load {run['load_before'][0]} -> {run['load_after'][0]}"
        )
    lines.append("")
    return "\n".join(lines)
