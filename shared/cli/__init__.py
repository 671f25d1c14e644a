"""keyward's operator CLI: ``keyward rewrap | status | retirement`` (or ``python -m shared.cli``).

Stores and the Key Vault adapter are imported only when a command needs them, so ``--help``
and the development mode (``--local-keys``) never load an Azure SDK.
"""

from shared.cli._main import main

__all__ = ["main"]
