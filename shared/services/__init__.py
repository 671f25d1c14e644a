"""Application services: what each trigger function calls.

Each service composes pure domain logic (``shared.events``, ``shared.rewrap``,
``shared.dependents``) with adapters built from :class:`shared.settings.Settings`. Functions in
``functions/`` only parse their binding, call one service method and log one line.
"""

# The composition root (shared.composition) imports the Azure adapters and builds these
# services; the services themselves only see ports, so pure tests never load an Azure SDK.
