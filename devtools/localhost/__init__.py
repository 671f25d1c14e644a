"""A small local stand-in for the Azure Functions host (Core Tools cannot be installed here).

It loads ``function_app.app``, and drives each function the way the real host does:

* Event Grid triggers at ``/runtime/webhooks/eventgrid?functionName=NAME`` with the
  subscription validation handshake (Event Grid schema) and the CloudEvents abuse-protection
  ``OPTIONS`` exchange;
* HTTP triggers at ``/api/{route}`` with function keys (``x-functions-key`` or ``?code=``);
* queue triggers by polling Azure Storage queues (Azurite) with the host.json queue settings,
  base64 message encoding and ``{queue}-poison`` after ``maxDequeueCount`` attempts;
* timer triggers from their NCRONTAB schedule, and on demand through the host's admin API
  (``POST /admin/functions/{name}``, as the real host offers for non-HTTP functions).

Every invocation goes through the real ``azure.functions`` binding converters, so what a
function receives here is what it receives in Azure.
"""
