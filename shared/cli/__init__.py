"""keyward's operator CLI: ``keyward rewrap | status | retirement`` (or ``python -m shared.cli``).

Stores and the Key Vault adapter are built only when a command needs them. The key source
is injectable (``main(..., open_keys=...)``): the development mode with local RSA keys is
``python -m devtools.cli_local --local-keys DIR ...``, outside the product package.
"""

from shared.cli._main import main

__all__ = ["main"]
