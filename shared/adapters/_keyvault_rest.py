"""A lean unwrap for the async rewrap engine: one REST call on the adapter's shared session.

Why it exists: the SDK's ``CryptographyClient.unwrap_key`` runs every request through a
pipeline of a dozen policies (request id, user agent, headers, redirect, retry, challenge
auth, content decode, logging, tracing, sensitive header cleanup), and deserializes through
msrest-style models. Client CPU per unwrap is measured by ``tests/adapters/bench_unwrap_cpu.py``
(numbers in its docstring); at Key Vault's ceiling of ~400 unwraps/s per vault that overhead
decides whether one core keeps up.

What it does, and nothing more: ``POST {vault}/keys/{name}/{version}/unwrapkey?api-version=``
with ``{"alg", "value"}`` and a bearer token from the same credential, scope and tenant the
SDK's challenge policy would use. The first call to a vault sends an empty-bodied request to
read the ``WWW-Authenticate`` challenge (as the SDK does); for Azure hosts the challenge's
resource must belong to the vault's domain (as the SDK verifies), for explicitly allowed
development origins it is taken as given. Errors map exactly like the SDK path. Wrap is not
here: it stays the SDK's local wrap with the public key.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from azure.core.credentials_async import AsyncTokenCredential
from azure.core.exceptions import AzureError

from shared.adapters._azure_errors import (
    keyvault_error,
    parse_error_body,
    parse_retry_after,
    translate,
)
from shared.crypto import (
    AsyncKeyWrapper,
    DataKey,
    KeyId,
    WrapAlgorithm,
    b64_decode_any,
    b64url_encode,
)
from shared.errors import (
    AccessDeniedError,
    IntegrityError,
    KeywardError,
    TransientServiceError,
)

#: Refresh a token this many seconds before it expires.
_TOKEN_REFRESH_MARGIN = 300.0
_MAX_RESPONSE_BYTES = 64 * 1024


@dataclass
class _Challenge:
    scope: str
    tenant_id: str | None


@dataclass
class _Token:
    value: str
    expires_on: float


def parse_challenge(header: str) -> _Challenge:
    """Scope and tenant from a Key Vault ``WWW-Authenticate: Bearer ...`` header.

    Raises:
        AccessDeniedError: not a usable bearer challenge.
    """
    scheme, _, rest = header.strip().partition(" ")
    if scheme.lower() != "bearer":
        raise AccessDeniedError("Key Vault sent a non-bearer authentication challenge")
    params: dict[str, str] = {}
    for item in rest.split(","):
        name, sep, value = item.partition("=")
        if sep and name.strip():
            params[name.strip().lower()] = value.strip().strip('"')
    authority = params.get("authorization") or params.get("authorization_uri")
    scope = params.get("scope")
    resource = params.get("resource")
    if not authority or not (scope or resource):
        raise AccessDeniedError("Key Vault's authentication challenge lacks authority or resource")
    if not scope:
        scope = f"{resource}/.default"
    tenant = urlsplit(authority).path.strip("/").split("/", 1)[0] or None
    return _Challenge(scope=scope, tenant_id=tenant)


def check_challenge_resource(scope: str, vault_url: str) -> None:
    """The SDK's rule: the challenge's resource host must be the vault host's domain.

    Raises:
        AccessDeniedError: a challenge naming another domain (a token would leak to it).
    """
    resource_host = urlsplit(scope).hostname or ""
    vault_host = urlsplit(vault_url).hostname or ""
    if not resource_host or not ("." + vault_host).endswith("." + resource_host):
        raise AccessDeniedError(
            f"Key Vault challenge resource {resource_host!r} does not match {vault_host!r}"
        )


class RestUnwrapClient:
    """Direct ``unwrapkey`` calls with token and challenge caching, on a shared aiohttp session."""

    def __init__(
        self,
        credential: AsyncTokenCredential,
        *,
        session_factory: Callable[[], Any],
        api_version: str,
        dev_origins: Collection[str],
        read_timeout: float,
        connect_timeout: float,
    ) -> None:
        self._credential = credential
        self._session_factory = session_factory
        self._api_version = api_version
        self._dev_origins = frozenset(dev_origins)
        self._timeout: Any = None
        self._read_timeout = read_timeout
        self._connect_timeout = connect_timeout
        self._challenges: dict[str, _Challenge] = {}
        self._tokens: dict[tuple[str, str | None], _Token] = {}
        self._token_locks: dict[tuple[str, str | None], asyncio.Lock] = {}
        self._challenge_locks: dict[str, asyncio.Lock] = {}

    def _client_timeout(self) -> Any:
        if self._timeout is None:
            import aiohttp

            self._timeout = aiohttp.ClientTimeout(
                sock_connect=self._connect_timeout, sock_read=self._read_timeout
            )
        return self._timeout

    async def _challenge(self, vault_url: str, url: str) -> _Challenge:
        challenge = self._challenges.get(vault_url)
        if challenge is not None:
            return challenge
        # One discovery per vault even when hundreds of unwraps start at once.
        async with self._challenge_locks.setdefault(vault_url, asyncio.Lock()):
            challenge = self._challenges.get(vault_url)
            if challenge is None:
                challenge = await self._discover(vault_url, url)
            return challenge

    async def _discover(self, vault_url: str, url: str) -> _Challenge:
        # Like the SDK: the first request to a vault goes without body or token.
        status, headers, payload = await self._post(url, None, None)
        header = headers.get("WWW-Authenticate") or headers.get("www-authenticate")
        if status != 401:
            # Throttled, failing or refusing before authentication: map it like any answer.
            code, inner, message = parse_error_body(payload)
            raise keyvault_error(
                status,
                operation="unwrapKey",
                key_id=vault_url,
                code=code,
                inner_code=inner,
                service_message=message,
                retry_after=parse_retry_after(headers),
            )
        if not header:
            raise AccessDeniedError(f"{vault_url} answered 401 without a bearer challenge")
        challenge = parse_challenge(header)
        if vault_url not in self._dev_origins:
            check_challenge_resource(challenge.scope, vault_url)
        self._challenges[vault_url] = challenge
        return challenge

    async def _token(self, challenge: _Challenge, *, force: bool = False) -> str:
        cache_key = (challenge.scope, challenge.tenant_id)
        token = self._tokens.get(cache_key)
        if not force and token and token.expires_on - time.time() > _TOKEN_REFRESH_MARGIN:
            return token.value
        lock = self._token_locks.setdefault(cache_key, asyncio.Lock())
        async with lock:
            token = self._tokens.get(cache_key)
            fresh = token and token.expires_on - time.time() > _TOKEN_REFRESH_MARGIN
            if force or not fresh:
                kwargs: dict[str, Any] = {}
                if challenge.tenant_id and not challenge.tenant_id.lower().endswith("adfs"):
                    kwargs["tenant_id"] = challenge.tenant_id
                error: KeywardError | None = None
                try:
                    access = await self._credential.get_token(challenge.scope, **kwargs)
                except AzureError as exc:
                    # e.g. CredentialUnavailableError: never let an SDK type escape.
                    error = translate(exc, operation="get token", key_id=challenge.scope)
                if error is not None:
                    raise error
                token = _Token(access.token, float(access.expires_on))
                self._tokens[cache_key] = token
            assert token is not None
            return token.value

    async def _post(
        self, url: str, body: bytes | None, token: str | None
    ) -> tuple[int, dict[str, str], bytes]:
        import aiohttp

        headers = {"Content-Type": "application/json"} if body is not None else {}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        session = self._session_factory()
        try:
            async with session.post(
                url,
                data=body,
                headers=headers,
                timeout=self._client_timeout(),
                # Key Vault never redirects; following one could carry the bearer token
                # to another host.
                allow_redirects=False,
            ) as response:
                # read(n) may return a partial body; read to the end, but never more than
                # the cap (a Key Vault answer is a few hundred bytes).
                if (response.content_length or 0) > _MAX_RESPONSE_BYTES:
                    raise TransientServiceError("Key Vault answer exceeds the size limit")
                chunks: list[bytes] = []
                size = 0
                async for chunk in response.content.iter_chunked(8192):
                    size += len(chunk)
                    if size > _MAX_RESPONSE_BYTES:
                        raise TransientServiceError("Key Vault answer exceeds the size limit")
                    chunks.append(chunk)
                return response.status, dict(response.headers), b"".join(chunks)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise TransientServiceError(
                f"Key Vault request failed: {type(exc).__name__} (network or timeout)"
            ) from None

    async def unwrap(self, key_id: KeyId, algorithm: WrapAlgorithm, wrapped: bytes) -> bytes:
        """Unwrap ``wrapped`` with ``key_id`` in the vault.

        Raises:
            IntegrityError: the vault could not unwrap the bytes (400) or answered nonsense.
            AccessDeniedError, KeyDisabledError, KeyNotFoundError, ThrottledError,
                TransientServiceError, ConflictError, InvalidInputError: as mapped.
        """
        url = f"{key_id.id}/unwrapkey?api-version={self._api_version}"
        body = json.dumps({"alg": algorithm.value, "value": b64url_encode(wrapped)}).encode()
        challenge = await self._challenge(key_id.vault_url, url)
        status, headers, payload = await self._post(url, body, await self._token(challenge))
        if status == 401:
            # Token revoked or a new challenge (e.g. claims): learn it again, retry once.
            self._challenges.pop(key_id.vault_url, None)
            challenge = await self._challenge(key_id.vault_url, url)
            token = await self._token(challenge, force=True)
            status, headers, payload = await self._post(url, body, token)
        if status == 200:
            return _unwrapped_value(payload, key_id.id)
        code, inner, message = parse_error_body(payload)
        raise keyvault_error(
            status,
            operation="unwrapKey",
            key_id=key_id.id,
            code=code,
            inner_code=inner,
            service_message=message,
            retry_after=parse_retry_after(headers),
        )


def _unwrapped_value(payload: bytes, key_id: str) -> bytes:
    try:
        data = json.loads(payload)
        value = data["value"]
        if not isinstance(value, str):
            raise TypeError
        return b64_decode_any(value)
    except (ValueError, KeyError, TypeError, RecursionError):
        raise IntegrityError(f"Key Vault unwrapKey on {key_id}: malformed response") from None


class LeanAsyncKeyVaultKeyWrapper:
    """``AsyncKeyWrapper``: the SDK wrapper's (local) wrap, unwrap as one direct REST call."""

    def __init__(self, sdk_wrapper: AsyncKeyWrapper, key_id: KeyId, rest: RestUnwrapClient):
        self._sdk = sdk_wrapper
        self._key_id = key_id
        self._rest = rest

    @property
    def key_id(self) -> str:
        return self._key_id.id

    @property
    def algorithm(self) -> WrapAlgorithm:
        return self._sdk.algorithm

    async def wrap(self, dek: DataKey) -> bytes:
        """Wrap through the SDK (locally with the public key when the key allows it).

        Raises:
            UnsupportedAlgorithmError, KeyDisabledError, KeyNotFoundError, AccessDeniedError,
                ThrottledError, TransientServiceError: as the SDK wrapper.
        """
        return await self._sdk.wrap(dek)

    async def unwrap(self, wrapped: bytes) -> DataKey:
        """Unwrap in the vault with one REST call.

        Raises:
            IntegrityError, AccessDeniedError, KeyDisabledError, KeyNotFoundError,
                ThrottledError, TransientServiceError: as :meth:`RestUnwrapClient.unwrap`.
        """
        return DataKey(await self._rest.unwrap(self._key_id, self.algorithm, wrapped))

    def __repr__(self) -> str:
        return (
            f"LeanAsyncKeyVaultKeyWrapper(key_id={self.key_id!r}, algorithm={self.algorithm.value})"
        )
