"""``rewrap_worker``: keyward's one queue trigger.

Each message is either one time slice of one shard of a rewrap job, or the key-dependent
follow-up of one Key Vault event (re-point, evaluate, flag), told apart by its ``kind``
(``shared.services.queue_worker``). The queue is ``%KEYWARD_JOB_QUEUE%`` on the
``AzureWebJobsStorage`` account; host.json sets its batch size, visibility timeout and
``maxDequeueCount`` (after which the host moves a failing message to ``{queue}-poison`` and
the job records it).
"""

from __future__ import annotations

import logging

import azure.functions as func

from shared.composition import context_for_current_loop, traced_invocation

bp = func.Blueprint()
_log = logging.getLogger("keyward.functions.rewrap_worker")

#: Must equal host.json's ``extensions.queues.maxDequeueCount`` (a test pins them together).
MAX_DEQUEUE_COUNT = 5


@bp.function_name("rewrap_worker")
@bp.queue_trigger(
    arg_name="message", queue_name="%KEYWARD_JOB_QUEUE%", connection="AzureWebJobsStorage"
)
async def rewrap_worker(message: func.QueueMessage, context: func.Context) -> None:
    body = message.get_body().decode("utf-8", errors="replace")
    with traced_invocation(
        "rewrap_worker", context, trigger="pubsub", message_body=body, message_id=message.id
    ):
        app = await context_for_current_loop()
        worker = app.queue_worker(max_dequeue_count=MAX_DEQUEUE_COUNT)
        outcome = await worker.handle(
            body, message_id=message.id or "", dequeue_count=message.dequeue_count or 1
        )
        _log.info(outcome.log_line())
