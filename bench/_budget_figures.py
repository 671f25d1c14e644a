"""(f)'s figures from one run's raw material (:func:`bench._budget_run.run_once`).

Rates come from the emulator's counters, read every half second by the orchestrator: the
accepted operations on keyward's key (``k_unwrap``: unwraps, one per DEK; ``k_ops``: every
charged operation, the key reads included) and on the application's key, and the 429s of
each. A cumulative count is interpolated at whole seconds, so a per-second series is exact
to within one reading's latency. The workers' own checkpoint timestamps give a second,
coarser series (one mark per page of 100 DEKs) as a cross-check.

Windows: *steady* starts ``SETTLE_SECONDS`` after keyward's first unwrap (every member has
joined and waited its refresh) and ends at the kill, or at the first shard that completes,
or when the engines were told to stop; *after the kill* starts once the survivors are back
(``recovery``) and ends when the first surviving shard completes.
"""

from __future__ import annotations

import bisect
import statistics
from typing import Any

from bench._budget_stamps import max_sent_per_window
from shared.rewrap import BUDGET_WINDOW_SECONDS

SETTLE_SECONDS = 10.0
#: Seconds averaged to call the survivors back at the target after a kill.
RECOVERY_AVERAGE_SECONDS = 5
#: Seconds right after the kill not counted as "back" (the dead worker's requests in flight).
SKIP_AFTER_KILL = 2
TARGET_FRACTION = 0.9


def at(samples: list[dict[str, Any]], field: str, t: float) -> float:
    """The cumulative ``field`` at time ``t``, interpolated between readings."""
    times = [s["t"] for s in samples]
    i = bisect.bisect_left(times, t)
    if i <= 0:
        return float(samples[0][field])
    if i >= len(samples):
        return float(samples[-1][field])
    a, b = samples[i - 1], samples[i]
    span = b["t"] - a["t"]
    share = (t - a["t"]) / span if span > 0 else 1.0
    return a[field] + (b[field] - a[field]) * share


def rate(samples: list[dict[str, Any]], field: str, start: float, end: float) -> float | None:
    if end - start < 1:
        return None
    return (at(samples, field, end) - at(samples, field, start)) / (end - start)


def per_second(samples: list[dict[str, Any]], field: str, start: float, end: float) -> list[float]:
    return [
        at(samples, field, start + i + 1) - at(samples, field, start + i)
        for i in range(int(end - start))
    ]


def max_window(samples: list[dict[str, Any]], field: str, start: float, end: float) -> float:
    """Most of ``field`` counted in any 10-second span inside [start, end] (0.5 s steps)."""
    best, t = 0.0, start + BUDGET_WINDOW_SECONDS
    while t <= end:
        best = max(best, at(samples, field, t) - at(samples, field, t - BUDGET_WINDOW_SECONDS))
        t += 0.5
    return best


def _marks_total(workers: list[dict[str, Any]], t: float) -> float:
    """Rewraps done by time ``t`` per the workers' own checkpoints (summed over shards)."""
    total = 0.0
    for worker in workers:
        for shard in [*worker.get("own", []), *worker.get("adopted", [])]:
            marks = shard.get("marks") or []
            base = marks[0][1] if marks else 0  # a resumed job starts from its counters
            done = [n for stamp, n in marks if stamp <= t]
            total += (done[-1] - base) if done else 0
    return total


def recovered_after(series: list[float], target: float) -> float | None:
    """Seconds after the kill to the first whole second at ``target`` or more from which the
    aggregate also averages ``target`` over ``RECOVERY_AVERAGE_SECONDS``. The first
    ``SKIP_AFTER_KILL`` seconds are left out: they still count what the killed worker had in
    flight (answered after it died)."""
    width = RECOVERY_AVERAGE_SECONDS
    for start in range(SKIP_AFTER_KILL, len(series) - width + 1):
        if series[start] >= target and sum(series[start : start + width]) / width >= target:
            return float(start)
    return None


def recounted_after(workers: list[dict[str, Any]], kill: float) -> list[float]:
    """Per surviving process: seconds from the kill until its members' budget log first
    shows fewer members than before the kill (the dead worker's part handed out)."""
    seconds = []
    for worker in workers:
        lines = worker.get("board_log") or []
        before = [_members(m) for t, m in lines if t <= kill and _members(m)]
        if not before:
            continue
        after = [t for t, m in lines if t > kill and 0 < _members(m) < before[-1]]
        if after:
            seconds.append(round(after[0] - kill, 1))
    return seconds


def _members(message: str) -> int:
    """``budget of HOST: shared, 4 member(s), 49.0 ops/s`` -> 4 (0 when not such a line)."""
    head, _, _ = message.partition(" member(s)")
    number = head.rsplit(" ", 1)[-1]
    return int(number) if number.isdigit() else 0


def _round(value: float | None, digits: int = 1) -> float | None:
    return None if value is None else round(value, digits)


def figures(run: dict[str, Any], budget_per_second: float) -> dict[str, Any]:
    samples = run["samples"]
    plan = run["plan"]
    share_rate = plan["share"] * budget_per_second
    target = TARGET_FRACTION * share_rate
    workers = [w for w in run["workers"] if not w.get("killed")]
    launched, ended = run["launched"], run["workers_ended"]
    # The engine runs these processes made (a shard another finished answers, no marks).
    ran = [r for w in workers for r in [*w["own"], *(a for a in w["adopted"] if a["ran"])]]
    first = next((s["t"] for s in samples if s["k_unwrap"] > 0), run["launched"])
    own_ends = [s["ended"] for w in workers for s in w["own"] if s["status"] == "completed"]
    first_done = min(own_ends) if own_ends else ended
    steady_start = first + SETTLE_SECONDS
    killed = run.get("killed")
    steady_end = min(killed["at"] if killed else first_done, first_done)
    if plan.get("stop_after_seconds"):
        steady_end = min(steady_end, run["launched"] + plan["stop_after_seconds"])
    bins = per_second(samples, "k_unwrap", steady_start, steady_end)
    out: dict[str, Any] = {
        "share_rate": share_rate,
        "target_rate": target,
        "first_unwrap_after": _round(first - run["launched"], 2),
        "steady_window": [_round(steady_start - launched), _round(steady_end - launched)],
        "steady_rate": _round(rate(samples, "k_unwrap", steady_start, steady_end)),
        "steady_ops_rate": _round(rate(samples, "k_ops", steady_start, steady_end)),
        "steady_median_bin": _round(statistics.median(bins)) if bins else None,
        "steady_min_bin": _round(min(bins)) if bins else None,
        "steady_rate_from_marks": _round(
            (_marks_total(workers, steady_end) - _marks_total(workers, steady_start))
            / (steady_end - steady_start)
            if steady_end - steady_start >= 1 and not killed
            else None
        ),
        "max_keyward_ops_per_window": _round(max_window(samples, "k_ops", first, ended)),
        "max_keyward_sent_per_window": max_sent_per_window(
            {int(k): v for k, v in run.get("sent_bins", {}).items()}, BUDGET_WINDOW_SECONDS
        ),
        "max_window_used": max(s["window_used"] for s in samples),
        "app_rate_steady": _round(rate(samples, "a_ok", steady_start, steady_end)),
        "keyward_429_emulator": samples[-1]["k_429"],
        "app_429_emulator": samples[-1]["a_429"],
        "keyward_429_engines": sum(r["throttled"] for r in ran),
        "rate_decreases": sum(r["rate_decreases"] for r in ran),
        "keyward_unwraps": samples[-1]["k_unwrap"],
        "run_seconds": _round(ended - launched),
    }
    if killed:
        kill = killed["at"]
        series = per_second(samples, "k_unwrap", kill, ended)
        recovery = recovered_after(series, target)
        out["recovery_seconds"] = recovery
        out["members_recounted_after"] = recounted_after(workers, kill)
        out["dead_part_rate"] = _round(rate(samples, "k_unwrap", kill, kill + (recovery or 0)))
        after_start = kill + (recovery or 0)
        out["after_window"] = [_round(after_start - launched), _round(first_done - launched)]
        after = rate(samples, "k_unwrap", after_start, first_done) if recovery else None
        out["after_rate"] = _round(after)
        out["after_kill_series"] = [round(v) for v in series[:40]]
        out["resumed_by"] = [
            {"pid": w["pid"], "shard": a["shard"], "rewrapped": a["rewrapped"], "tries": a["busy"]}
            for w in workers for a in w["adopted"] if a.get("ran")
        ]  # fmt: skip
    return out
