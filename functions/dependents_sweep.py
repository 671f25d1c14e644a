"""``dependents_sweep``: the timer that re-evaluates every key-dependent resource (Face
accounts) and flags revoked key access (schedule: ``KEYWARD_DEPENDENTS_SWEEP_SCHEDULE``,
NCRONTAB, every 5 minutes by default, 30 seconds after the rewrap ``sweep``).

A function of its own, so a slow or failing rewrap reconciliation never delays a revocation
flag, and a failing inventory never stops a rewrap."""

from __future__ import annotations

import logging

import azure.functions as func

from shared.composition import context_for_current_loop, traced_invocation

bp = func.Blueprint()
_log = logging.getLogger("keyward.functions.dependents_sweep")


@bp.function_name("dependents_sweep")
@bp.timer_trigger(
    arg_name="timer", schedule="%KEYWARD_DEPENDENTS_SWEEP_SCHEDULE%", use_monitor=True
)
async def dependents_sweep(timer: func.TimerRequest, context: func.Context) -> None:
    with traced_invocation("dependents_sweep", context, trigger="timer"):
        app = await context_for_current_loop()
        report = await app.dependents_sweep().run()
        _log.info("%s past_due=%s", report.log_line(), timer.past_due)
