"""``sweep``: the timer that reconciles what events miss (schedule: ``KEYWARD_SWEEP_SCHEDULE``,
NCRONTAB, every 5 minutes by default)."""

from __future__ import annotations

import logging

import azure.functions as func

from shared.composition import context_for_current_loop

bp = func.Blueprint()
_log = logging.getLogger("keyward.functions.sweep")


@bp.function_name("sweep")
@bp.timer_trigger(arg_name="timer", schedule="%KEYWARD_SWEEP_SCHEDULE%", use_monitor=True)
async def sweep(timer: func.TimerRequest) -> None:
    context = await context_for_current_loop()
    report = await context.sweep().run()
    _log.info("%s past_due=%s", report.log_line(), timer.past_due)
