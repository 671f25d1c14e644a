"""Application services: what each trigger function calls.

Each service composes pure domain logic (``shared.events``, ``shared.rewrap``,
``shared.face``) with adapters built from :class:`shared.settings.Settings`. Functions in
``functions/`` only parse their binding, call one service method and log one line.
"""

from shared.services._messages import MESSAGE_VERSION, ShardMessage

__all__ = ["MESSAGE_VERSION", "ShardMessage"]

# The composition root (shared.services._context) imports the Azure adapters; it is imported
# by the trigger functions only, so pure tests of the services never load an Azure SDK.
