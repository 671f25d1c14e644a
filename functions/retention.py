"""``retention``: the timer that deletes what keyward keeps about the past once it is older
than ``KEYWARD_RETENTION_DAYS`` (handled events, rejected deliveries, ended jobs but each
key's newest), in bounded batches (schedule: ``KEYWARD_RETENTION_SCHEDULE``, NCRONTAB, daily
by default). A function of its own: it never delays a sweep, nor a sweep it."""

from __future__ import annotations

import logging

import azure.functions as func

from shared.composition import context_for_current_loop, traced_invocation

bp = func.Blueprint()
_log = logging.getLogger("keyward.functions.retention")


@bp.function_name("retention")
@bp.timer_trigger(arg_name="timer", schedule="%KEYWARD_RETENTION_SCHEDULE%", use_monitor=True)
async def retention(timer: func.TimerRequest, context: func.Context) -> None:
    with traced_invocation("retention", context, trigger="timer"):
        app = await context_for_current_loop()
        report = await app.retention().run()
        _log.info("%s past_due=%s", report.log_line(), timer.past_due)
