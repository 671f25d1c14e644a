"""Test credentials: a token per emulated principal, for the real Azure SDK clients.

``EmulatorCredential(object_id)`` satisfies azure-core's ``TokenCredential`` and
``SupportsTokenInfo`` protocols; ``AsyncEmulatorCredential`` is the ``aio`` twin. The token is
an unsigned JWT that names the principal and the audience asked for (the Key Vault challenge
policy asks for ``https://vault.azure.net/.default``, or the Managed HSM resource), so the
emulator can tell who is calling without an identity provider. Never use these against Azure:
Azure rejects them, as it should.
"""

from __future__ import annotations

from types import TracebackType
from typing import Any

from azure.core.credentials import AccessToken, AccessTokenInfo, TokenRequestOptions

from devtools.emulator.auth import audience_for_scope, mint_token
from devtools.emulator.state import DEFAULT_TENANT_ID


class EmulatorCredential:
    """A synchronous credential whose tokens name ``object_id`` to the emulator."""

    def __init__(
        self, object_id: str, *, tenant_id: str = DEFAULT_TENANT_ID, lifetime_seconds: int = 3600
    ) -> None:
        self.object_id = object_id
        self.tenant_id = tenant_id
        self._lifetime = lifetime_seconds
        self.requests = 0  # how many tokens were handed out (tests check caching)

    def _mint(self, scopes: tuple[str, ...], tenant_id: str | None) -> tuple[str, int]:
        if not scopes:
            raise ValueError("at least one scope is required")
        self.requests += 1
        return mint_token(
            self.object_id,
            audience_for_scope(scopes[0]),
            tenant_id=tenant_id or self.tenant_id,
            lifetime_seconds=self._lifetime,
        )

    def get_token(
        self,
        *scopes: str,
        claims: str | None = None,
        tenant_id: str | None = None,
        enable_cae: bool = False,
        **kwargs: Any,
    ) -> AccessToken:
        del claims, enable_cae, kwargs
        token, expires = self._mint(scopes, tenant_id)
        return AccessToken(token, expires)

    def get_token_info(
        self, *scopes: str, options: TokenRequestOptions | None = None
    ) -> AccessTokenInfo:
        tenant_id = options.get("tenant_id") if options else None
        token, expires = self._mint(scopes, tenant_id)
        return AccessTokenInfo(token, expires, token_type="Bearer")  # noqa: S106 - a scheme name

    def close(self) -> None:
        """Nothing to release; present so ``with`` and SDK clients can close it."""

    def __enter__(self) -> EmulatorCredential:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None = None,
        exc_value: BaseException | None = None,
        traceback: TracebackType | None = None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"EmulatorCredential(object_id={self.object_id!r})"


class AsyncEmulatorCredential:
    """The ``aio`` twin of :class:`EmulatorCredential` (``AsyncTokenCredential``)."""

    def __init__(
        self, object_id: str, *, tenant_id: str = DEFAULT_TENANT_ID, lifetime_seconds: int = 3600
    ) -> None:
        self._sync = EmulatorCredential(
            object_id, tenant_id=tenant_id, lifetime_seconds=lifetime_seconds
        )
        self.object_id = object_id

    @property
    def requests(self) -> int:
        return self._sync.requests

    async def get_token(
        self,
        *scopes: str,
        claims: str | None = None,
        tenant_id: str | None = None,
        enable_cae: bool = False,
        **kwargs: Any,
    ) -> AccessToken:
        return self._sync.get_token(
            *scopes, claims=claims, tenant_id=tenant_id, enable_cae=enable_cae, **kwargs
        )

    async def get_token_info(
        self, *scopes: str, options: TokenRequestOptions | None = None
    ) -> AccessTokenInfo:
        return self._sync.get_token_info(*scopes, options=options)

    async def close(self) -> None:
        """Nothing to release."""

    async def __aenter__(self) -> AsyncEmulatorCredential:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None = None,
        exc_value: BaseException | None = None,
        traceback: TracebackType | None = None,
    ) -> None:
        await self.close()

    def __repr__(self) -> str:
        return f"AsyncEmulatorCredential(object_id={self.object_id!r})"
