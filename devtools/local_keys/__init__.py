"""DEVELOPMENT ONLY: key versions from local RSA keys instead of Key Vault.

Private keys in process memory or on disk are exactly what production must never have,
which is why this lives in ``devtools`` and nothing in ``shared`` can import it.
"""

from devtools.local_keys._manifest import MANIFEST, load_local_keys
from devtools.local_keys._source import LocalKeyVersionSource

__all__ = ["MANIFEST", "LocalKeyVersionSource", "load_local_keys"]
