"""Adapters: one thin module per Azure SDK, translating SDK errors into ``shared.errors``.

Names are re-exported lazily so that importing one adapter does not import every SDK.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from shared.adapters._keyvault_rest import LeanAsyncKeyVaultKeyWrapper
    from shared.adapters.keyvault import (
        AsyncKeyVaultAdapter,
        AsyncKeyVaultKeyWrapper,
        KeyVersionProperties,
        PublicKeyInfo,
    )

_LAZY = {
    "AsyncKeyVaultAdapter": "shared.adapters.keyvault",
    "AsyncKeyVaultKeyWrapper": "shared.adapters.keyvault",
    "KeyVersionProperties": "shared.adapters.keyvault",
    "PublicKeyInfo": "shared.adapters.keyvault",
    "LeanAsyncKeyVaultKeyWrapper": "shared.adapters._keyvault_rest",
}

__all__ = [
    "AsyncKeyVaultAdapter",
    "AsyncKeyVaultKeyWrapper",
    "KeyVersionProperties",
    "LeanAsyncKeyVaultKeyWrapper",
    "PublicKeyInfo",
]


def __getattr__(name: str) -> Any:
    module_name = _LAZY.get(name)
    if module_name is None:
        raise AttributeError(f"module 'shared.adapters' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module_name), name)
