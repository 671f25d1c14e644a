"""DEVELOPMENT ONLY: key versions from a local directory instead of Key Vault.

Reached only through ``python -m devtools.cli_local --local-keys DIR ...``. The
directory holds PEM private keys and a ``manifest.json``::

    {"keys": [{"key": "https://contoso-kv.vault.azure.net/keys/payments",
               "versions": [{"version": "<32 hex>", "enabled": true,
                             "created": "2026-01-01T00:00:00+00:00", "pem": "v1.pem"}]}]}

Private keys on disk are exactly what production must never have, which is why this lives
in devtools, which nothing in ``shared`` imports.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from devtools.local_keys._source import LocalKeyVersionSource
from shared.errors import ConfigurationError

MANIFEST = "manifest.json"


def load_local_keys(directory: Path) -> LocalKeyVersionSource:
    """Load ``directory/manifest.json`` and the PEM files it names.

    Raises:
        ConfigurationError: the manifest is missing or malformed, or a key is not RSA.
    """
    try:
        manifest: Any = json.loads((directory / MANIFEST).read_text())
        source = LocalKeyVersionSource()
        for key in manifest["keys"]:
            for entry in key["versions"]:
                source.add_version(
                    key["key"],
                    entry["version"],
                    _private_key(directory / entry["pem"]),
                    enabled=bool(entry.get("enabled", True)),
                    created=datetime.fromisoformat(entry["created"]),
                )
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise ConfigurationError(
            f"--local-keys {directory}: unusable manifest or key ({type(error).__name__})"
        ) from None
    return source


def _private_key(path: Path) -> rsa.RSAPrivateKey:
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError("not an RSA private key")
    return key
