"""(f)'s figures as Markdown: one table per run, verdicts against the issue's targets.

Written to ``bench/out/budget-<time>.md`` (and printed) by ``python -m bench budget``; the
section of ``docs/benchmarks.md`` is written by hand from it, with the analysis.
"""

from __future__ import annotations

import statistics
from typing import Any

from bench._budget_figures import TARGET_FRACTION

#: A dead member's part must be back within one budget lease.
HEADROOM = 0.98


def _verdict(ok: bool) -> str:
    return "**PASS**" if ok else "**MISS**"


def _fmt(value: Any, digits: int = 1) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _verified(verify: dict[str, Any], expected: int, *, all_at_target: bool) -> tuple[str, bool]:
    total = verify["total"]
    found, at_target = total.get("found", 0), total.get("at_target", 0)
    kcv_ok = total.get("kcv_ok", 0)
    fine = {"found", "at_target", "below_target", "kcv_ok"}
    bad = {k: v for k, v in total.items() if k not in fine}
    ok = found == expected and kcv_ok == expected and not bad
    if all_at_target:
        ok = ok and at_target == expected
    text = (
        f"{found:,} found of {expected:,} seeded; {at_target:,} at the new version; "
        f"{kcv_ok:,} unwrap to their KCV" + (f"; other: {bad}" if bad else "")
    )
    return text, ok


def _machine_row(run: dict[str, Any]) -> str:
    """Whether the vault itself kept up: the app's latency (20 ms configured) and the CPU
    the emulator and Azurite got during the run."""
    latency = run["app"].get("latency_ms") or {}
    cores = run.get("service_cores") or {}
    return (
        f"| the machine: app's unwrap latency median / p95 (20 ms configured); emulator / "
        f"Azurite CPU (cores) | {_fmt(latency.get('median'))} / {_fmt(latency.get('p95'))} ms; "
        f"{_fmt(cores.get('devtools.emulator'), 2)} / {_fmt(cores.get('azurite'), 2)} | "
        "(reported) | |"
    )


def _shared(run: dict[str, Any], expected: int, share: float, per_second: float) -> list[str]:
    fig, app = run["figures"], run["app"]
    share_rate, target = fig["share_rate"], fig["target_rate"]
    ceiling = share_rate * HEADROOM
    steady = fig["steady_rate"] or 0.0
    lease = run["plan"]["budget_lease_seconds"]
    recovery = fig.get("recovery_seconds")
    verified, verified_ok = _verified(run["verify"], expected, all_at_target=True)
    app_429 = max(fig["app_429_emulator"], app["throttled"])
    window = fig["steady_window"]
    return [
        f"| application's 429s (emulator / its own count), {app['achieved_per_second']:.1f} "
        f"unwraps/s accepted of {app['rate']:.0f} asked | {fig['app_429_emulator']} / "
        f"{app['throttled']} | 0 | {_verdict(app_429 == 0)} |",
        f"| keyward's aggregate unwraps/s, steady window {window[0]}-{window[1]} s, before the "
        f"kill (emulator) | {steady:.1f} = {steady / share_rate:.3f} of its share "
        f"({share} x {per_second:.0f} = {share_rate:.0f}/s; ceiling with headroom "
        f"{ceiling:.0f}/s = {HEADROOM}) | >= {TARGET_FRACTION} ({target:.0f}/s) | "
        f"{_verdict(steady >= target)} |",
        f"| same window: median / lowest 1-s bin; all keyward operations/s; from the workers' "
        f"own checkpoints | {_fmt(fig['steady_median_bin'])} / {_fmt(fig['steady_min_bin'])}; "
        f"{_fmt(fig['steady_ops_rate'])}; {_fmt(fig['steady_rate_from_marks'])} | (reported) | |",
        f"| most keyward unwraps sent in any 10 s (workers' clocks) / operations the vault "
        f"counted in any 10 s / whole vault's window at its fullest | "
        f"{fig.get('max_keyward_sent_per_window', 0):.0f} and "
        f"{fig['max_keyward_ops_per_window']:.0f} of {share_rate * 10:.0f} / "
        f"{fig['max_window_used']:.0f} of {per_second * 10:.0f} | (reported) | |",
        f"| SIGKILL of worker 0 at {run['killed']['k_unwrap_at_kill']:,} unwraps: seconds until "
        f"the survivors' 5-s average is back at >= {target:.0f}/s | {_fmt(recovery)} | <= one "
        f"budget lease ({lease:.0f} s) | {_verdict(recovery is not None and recovery <= lease)} |",
        f"| survivors' budget boards count the dead worker out after (s, per process) | "
        f"{', '.join(map(str, fig.get('members_recounted_after', []))) or 'n/a'} | <= {lease:.0f} "
        "| |",
        f"| meanwhile (kill to recovery) / after recovery, until a survivor's shard completes | "
        f"{_fmt(fig.get('dead_part_rate'))} / {_fmt(fig.get('after_rate'))} unwraps/s | (reported) "
        "| |",
        f"| every DEK of every shard after the run | {verified} | all {expected:,}, at the new "
        f"version, KCV | {_verdict(verified_ok)} |",
        f"| keyward's 429s (emulator / engines' counters); AIMD decreases | "
        f"{fig['keyward_429_emulator']} / {fig['keyward_429_engines']}; {fig['rate_decreases']} "
        "| (reported) | |",
        _machine_row(run),
    ]


def _overload(run: dict[str, Any], expected: int) -> list[str]:
    fig, app = run["figures"], run["app"]
    verified, verified_ok = _verified(run["verify"], expected, all_at_target=False)
    window = fig["steady_window"]
    return [
        f"| application asks {app['rate']:.0f} unwraps/s (above its part): accepted / 429s "
        f"(its count; emulator) | {app['achieved_per_second']:.1f}/s / {app['throttled']} "
        f"({fig['app_429_emulator']}) | (reported) | |",
        f"| keyward's aggregate unwraps/s, window {window[0]}-{window[1]} s | "
        f"{_fmt(fig['steady_rate'])} (median 1-s {_fmt(fig['steady_median_bin'])}; from the "
        f"workers' checkpoints {_fmt(fig['steady_rate_from_marks'])}) | (reported) | |",
        f"| keyward's 429s (emulator / engines); AIMD decreases (sum over engines) | "
        f"{fig['keyward_429_emulator']} / {fig['keyward_429_engines']}; {fig['rate_decreases']} "
        "| (reported) | |",
        f"| most keyward unwraps sent in any 10 s (workers' clocks) / whole vault's window at its "
        f"fullest | {fig.get('max_keyward_sent_per_window', 0):.0f} / "
        f"{fig['max_window_used']:.0f} | (reported) | |",
        f"| every DEK after the run (paused mid-rotation) | {verified} | none lost or corrupted | "
        f"{_verdict(verified_ok)} |",
        _machine_row(run),
    ]


def _summary(shared: list[dict[str, Any]], expected: int) -> list[str]:
    """Medians over the shared runs, and each target's verdict over every run."""
    if not shared:
        return []
    figs = [r["figures"] for r in shared]
    lease = shared[0]["plan"]["budget_lease_seconds"]
    target, share_rate = figs[0]["target_rate"], figs[0]["share_rate"]
    steady = [f["steady_rate"] or 0.0 for f in figs]
    recovery = [f.get("recovery_seconds") for f in figs]
    app_429 = [max(r["figures"]["app_429_emulator"], r["app"]["throttled"]) for r in shared]
    lost = [not _verified(r["verify"], expected, all_at_target=True)[1] for r in shared]
    recounted = [max(f.get("members_recounted_after") or [float("nan")]) for f in figs]
    known = [r for r in recovery if r is not None]
    return [
        f"Summary of the {len(shared)} shared runs (median; every run's value in brackets):",
        "",
        "| target | measured | verdict |",
        "|---|---|---|",
        f"| the application sees 0 throttled requests | {statistics.median(app_429):.0f} "
        f"({', '.join(map(str, app_429))}) | {_verdict(not any(app_429))} |",
        f"| keyward's aggregate >= {TARGET_FRACTION} of its share ({target:.0f} of "
        f"{share_rate:.0f}/s) | {statistics.median(steady):.1f}/s = "
        f"{statistics.median(steady) / share_rate:.3f} ({', '.join(f'{v:.1f}' for v in steady)}) "
        f"| {_verdict(min(steady) >= target)} |",
        f"| a killed worker loses nothing (every DEK at the new version, KCV) | "
        f"{sum(lost)} runs with a DEK lost or wrong of {len(shared)} | {_verdict(not any(lost))} |",
        f"| its part is taken up within one lease ({lease:.0f} s): the survivors count it out "
        f"/ their aggregate is back at >= {target:.0f}/s (s after the kill) | "
        f"{statistics.median(recounted):.1f} ({', '.join(f'{v:.1f}' for v in recounted)}) / "
        f"{_fmt(statistics.median(known) if known else None)} "
        f"({', '.join(_fmt(v) for v in recovery)}) | "
        f"{_verdict(len(known) == len(recovery) and max(known) <= lease)} |",
        "",
    ]


def render_budget(everything: dict[str, Any]) -> str:
    meta, result = everything["meta"], everything["results"]["budget"]
    config, runs = result["config"], result["runs"]
    per_second = result["budget_per_second"]
    expected = config["shards"] * config["deks_per_shard"]
    lines = [
        "### (f) Shared vault budget: generated figures",
        "",
        f"Command: `{meta['command']}`  ",
        f"Run: {meta['started']} to {meta['finished']}; load average (1/5/15) before "
        f"{' / '.join(map(str, meta['load_before']))}, after "
        f"{' / '.join(map(str, meta['load_after']))}; {meta['machine']['nproc']} cores  ",
        f"Shape: {config['shards']} Table shards x {config['deks_per_shard']:,} DEKs, "
        f"{config['processes']} worker processes, share {config['share']}, budget lease "
        f"{config['budget_lease_seconds']:.0f} s, job lease {config['job_lease_seconds']:.0f} s "
        f"(bench), vault 4,000 ops / 10 s, 20 ms; emulator, Azurite and application at nice "
        f"{config.get('service_nice', 0)}, keyward's workers at 0",
        "",
        *_summary([r for label, r in runs.items() if label.startswith("shared")], expected),
    ]
    for label, run in runs.items():
        lines += [
            f"**{label}** ({run['started_utc']}, {run['seconds']} s, load "
            f"{run['load_before'][0]} -> {run['load_after'][0]})",
            "",
            "| figure | measured | target | verdict |",
            "|---|---|---|---|",
            *(
                _shared(run, expected, config["share"], per_second)
                if label.startswith("shared")
                else _overload(run, expected)
            ),
            "",
        ]
        if run.get("killed"):
            series = run["figures"].get("after_kill_series", [])
            lines += [
                "Unwraps/s after the kill, second by second: " + ", ".join(map(str, series)) + ".",
                "Resumed: "
                + (
                    "; ".join(
                        f"{r['shard']} by pid {r['pid']} ({r['rewrapped']:,} rewrapped, "
                        f"{r['tries']} busy tries)"
                        for r in run["figures"].get("resumed_by", [])
                    )
                    or "none"
                )
                + ".",
                "",
            ]
    return "\n".join(lines) + "\n"
