"""``sweep``: the timer that reconciles rewrap jobs with what events miss (schedule:
``KEYWARD_SWEEP_SCHEDULE``, NCRONTAB, every 5 minutes by default). The revocation verdicts
are ``dependents_sweep``'s, a function of its own."""

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
