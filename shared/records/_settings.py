"""The envelope's tunables and their defaults: the one home of those defaults.

``shared.settings`` maps the app settings (``KEYWARD_CACHE_SIZE``,
``KEYWARD_DEK_CACHE_SECONDS``, ``KEYWARD_KEK_CACHE_SECONDS``, ``KEYWARD_MODE_TTL``) onto
:class:`EnvelopeSettings`; an application may also build one directly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from shared.errors import InvalidInputError

DEFAULT_CACHE_SIZE: Final = 10_000
DEFAULT_DEK_CACHE_SECONDS: Final = 300.0
DEFAULT_KEK_CACHE_SECONDS: Final = 300.0
DEFAULT_MODE_TTL_SECONDS: Final = 30.0


@dataclass(frozen=True)
class EnvelopeSettings:
    """How much an envelope caches, and for how long.

    Attributes:
        cache_size: most unwrapped keys (DEKs and KEKs together) held in memory; 0 caches
            nothing (every decrypt calls the vault in direct mode).
        dek_cache_seconds: how long an unwrapped DEK is kept. In direct mode this is how
            long reads of a cached record survive a revocation of the vault key.
        kek_cache_seconds: how long an unwrapped KEK is kept; DEKs it unwrapped expire no
            later. In hierarchy mode this is the revocation latency: disable or delete the
            vault key and every read fails within it (the trade-off is in
            ``docs/record-format.md``).
        mode_ttl_seconds: how long the store's mode row is trusted before it is read again;
            a migration waits this long after changing the mode.
    """

    cache_size: int = DEFAULT_CACHE_SIZE
    dek_cache_seconds: float = DEFAULT_DEK_CACHE_SECONDS
    kek_cache_seconds: float = DEFAULT_KEK_CACHE_SECONDS
    mode_ttl_seconds: float = DEFAULT_MODE_TTL_SECONDS

    def __post_init__(self) -> None:
        """Raises InvalidInputError on a negative size or duration (0 means "do not cache")."""
        for name in ("cache_size", "dek_cache_seconds", "kek_cache_seconds", "mode_ttl_seconds"):
            value = getattr(self, name)
            if isinstance(value, bool) or value < 0:
                raise InvalidInputError(f"{name} must be >= 0, got {value!r}")
