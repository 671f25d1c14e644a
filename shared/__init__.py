"""keyward: re-wrap data keys when a Key Vault key rotates; flag Face accounts that lose their key.

Layers (each imports only those below it):

1. ``shared.crypto``: pure cryptography and key ids. No Azure imports.
2. ``shared`` domain modules: events, rewrap engine, Face verdicts, settings. Pure, written
   against small protocols.
3. ``shared.adapters``: one thin module per Azure SDK, translating SDK errors into
   ``shared.errors``.

``functions/`` holds the trigger functions; ``function_app.py`` only registers them.
"""
