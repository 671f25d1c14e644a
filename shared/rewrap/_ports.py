"""The ports the rewrap engine needs from a key vault, as small protocols.

The Key Vault adapter implements :class:`KeyVersionSource` (versions from ``KeyClient``, unwrap
sent to the vault, wrap done locally with the public key, as ``CryptographyClient`` does);
tests and the CLI's development mode implement it in-process with local RSA keys. The DEK
store port is :class:`shared.stores.DekStore`; the job store port is in ``_job_store``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, runtime_checkable

from shared.crypto import AsyncKeyWrapper, WrapAlgorithm


class KeyVersionView(Protocol):
    """What the engine reads of one key version; any object with these attributes will do
    (the Key Vault adapter's ``KeyVersionProperties`` is one, :class:`KeyVersionInfo` another).
    """

    @property
    def version(self) -> str: ...

    @property
    def enabled(self) -> bool: ...

    @property
    def created(self) -> datetime: ...

    @property
    def key_type(self) -> str | None: ...

    @property
    def key_size(self) -> int | None: ...

    @property
    def attributes_enabled(self) -> bool | None: ...

    @property
    def not_before(self) -> datetime | None: ...

    @property
    def expires_on(self) -> datetime | None: ...

    @property
    def key_ops(self) -> tuple[str, ...] | None: ...


#: What Key Vault permits a key created without ``key_ops`` (every operation of its type).
DEFAULT_KEY_OPS = ("encrypt", "decrypt", "sign", "verify", "wrapKey", "unwrapKey")


@dataclass(frozen=True)
class KeyVersionInfo:
    """What the vault says about one version of a key.

    Attributes:
        version: the 32-hex version string (lower case).
        enabled: whether the vault would use it now (enabled, within ``nbf``/``exp``).
        created: when the version was created; orders versions ("newer", "older").
        key_type: ``RSA``, ``RSA-HSM``, ``oct-HSM``... (sizes the rate budget), when known.
        key_size: the RSA modulus size in bits, when known.
        attributes_enabled: the raw ``enabled`` attribute (``enabled`` also folds in
            ``nbf``/``exp``); ``None``: not known apart from ``enabled``.
        not_before, expires_on: the ``nbf`` / ``exp`` attributes, if set.
        key_ops: the permitted operations (``None``: not known).
    """

    version: str
    enabled: bool
    created: datetime
    key_type: str | None = "RSA"
    key_size: int | None = 2048
    attributes_enabled: bool | None = None
    not_before: datetime | None = None
    expires_on: datetime | None = None
    key_ops: tuple[str, ...] | None = DEFAULT_KEY_OPS


@runtime_checkable
class KeyVersionSource(Protocol):
    """Versions of keys in one or more vaults, and a wrapper per versioned key id."""

    async def newest_enabled_version(self, key_ref: str) -> str:
        """The newest enabled version of key ``key_ref`` (unversioned id), asked of the vault.

        Raises:
            KeyNotFoundError: the key does not exist or has no enabled version.
            AccessDeniedError: the caller may not read the key.
        """
        ...

    async def versions(self, key_ref: str) -> Sequence[KeyVersionView]:
        """Every version of ``key_ref`` the vault still has, in any order.

        Raises:
            KeyNotFoundError: the key does not exist.
            AccessDeniedError: the caller may not list the key's versions.
        """
        ...

    async def key_version(self, key_id: str) -> KeyVersionView:
        """One version as the vault answers ``GET /keys/{name}/{version}``: its attributes and
        ``key_ops`` (which listing versions does not give); the target's proof reads them.

        Raises:
            KeyNotFoundError: no such key or version.
            AccessDeniedError: the caller may not read the key.
        """
        ...

    async def wrapper(self, key_id: str, algorithm: WrapAlgorithm) -> AsyncKeyWrapper:
        """A wrapper for the versioned ``key_id`` using ``algorithm``.

        Unwrap goes to the vault (the private key never leaves it); wrap may be local with
        the public key. Async because building one may fetch the public key once.

        Raises:
            UnsupportedAlgorithmError: ``algorithm`` does not fit the key's type.
            KeyNotFoundError, KeyDisabledError, AccessDeniedError: as the vault answers.
        """
        ...
