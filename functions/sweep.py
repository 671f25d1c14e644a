"""``sweep``: the timer that reconciles rewrap jobs with what events miss (schedule:
``KEYWARD_SWEEP_SCHEDULE``, NCRONTAB, every 5 minutes by default), and starts the KEK
rotation of a hierarchy-mode store whose intermediate keys outlived their crypto-period
(``KEYWARD_KEK_MAX_AGE_DAYS``; bounded: one mode-row read and one KEK-table query per
store). The revocation verdicts are ``dependents_sweep``'s, a function of its own."""

from __future__ import annotations

import logging

import azure.functions as func

from shared.composition import context_for_current_loop, traced_invocation

bp = func.Blueprint()
_log = logging.getLogger("keyward.functions.sweep")


@bp.function_name("sweep")
@bp.timer_trigger(arg_name="timer", schedule="%KEYWARD_SWEEP_SCHEDULE%", use_monitor=True)
async def sweep(timer: func.TimerRequest, context: func.Context) -> None:
    with traced_invocation("sweep", context, trigger="timer"):
        app = await context_for_current_loop()
        report = await app.sweep().run()
        _log.info("%s past_due=%s", report.log_line(), timer.past_due)
        due = await app.admin().start_due_kek_rotations(app.settings.kek_max_age_days)
        for started in due:
            _log.info("KEK rotation started: store=%s operation=%s", started.shards[0],
                      started.operation_id)  # fmt: skip
