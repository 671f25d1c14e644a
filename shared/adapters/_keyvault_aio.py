"""The ``aio`` Key Vault adapter: the rewrap engine's key source (design in ``keyvault``)."""

from __future__ import annotations

import asyncio
import time
from types import TracebackType
from typing import Any, Self

from azure.core.credentials_async import AsyncTokenCredential
from azure.core.exceptions import AzureError
from azure.core.pipeline.transport import AioHttpTransport
from azure.keyvault.keys import KeyVaultKey
from azure.keyvault.keys.aio import KeyClient as AioKeyClient
from azure.keyvault.keys.crypto.aio import CryptographyClient as AioCryptographyClient

from shared.adapters._azure_errors import translate
from shared.adapters._keyvault_common import (
    API_VERSION,
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_KEY_REFRESH_SECONDS,
    DEFAULT_MAX_CONNECTIONS,
    DEFAULT_READ_TIMEOUT,
    SDK_ALGORITHMS,
    AdapterConfig,
    Clock,
    KeyVersionProperties,
    PublicKeyInfo,
    break_tie,
    check_algorithm_fits,
    check_wrap_allowed_now,
    is_symmetric,
    newest_candidates,
    public_key_info,
    remote_key_operation,
    remote_key_operation_result,
    version_properties,
)
from shared.crypto import (
    DEFAULT_WRAP_ALGORITHM,
    AsyncKeyWrapper,
    DataKey,
    KeyId,
    VaultAllowList,
    WrapAlgorithm,
    require_unwrap_allowed,
    require_wrap_allowed,
)
from shared.errors import (
    AccessDeniedError,
    KeyDisabledError,
    KeyNotFoundError,
    KeywardError,
    VaultNotAllowedError,
)


class _AsyncVersion:
    """One key version for asyncio callers: its fetched key and aio CryptographyClient."""

    def __init__(self, adapter: AsyncKeyVaultAdapter, key_id: KeyId) -> None:
        self._adapter = adapter
        self.key_id = key_id
        self._lock = asyncio.Lock()
        self._client: AioCryptographyClient | None = None
        self.key: KeyVaultKey | None = None
        self._fetched_at = 0.0

    def _fresh(self) -> bool:
        age = time.monotonic() - self._fetched_at
        return self._client is not None and age <= self._adapter.config.key_refresh_seconds

    async def client(self) -> AioCryptographyClient:
        """The version's aio CryptographyClient, (re)fetching the key when stale.

        Raises:
            ServiceError subclasses: the fetch failed (mapped).
        """
        if self._fresh():
            assert self._client is not None
            return self._client
        async with self._lock:
            if not self._fresh():
                self._client, self.key = await self._adapter._crypto_client(self.key_id)
                self._fetched_at = time.monotonic()
            assert self._client is not None
            return self._client

    async def remote(self, operation: str, algorithm: WrapAlgorithm, value: bytes) -> bytes:
        """``wrapKey`` / ``unwrapKey`` sent to the vault through the KeyClient's pipeline
        (``send_request``): for AES keys, which the SDK must not handle "locally" (see
        :func:`~shared.adapters._keyvault_common.is_symmetric`).

        Raises:
            ServiceError subclasses, IntegrityError, InvalidInputError: as mapped.
        """
        path = "wrapkey" if operation == "wrapKey" else "unwrapkey"
        request = remote_key_operation(self.key_id, path, algorithm, value)
        error: KeywardError | None = None
        try:
            response = await self._adapter._key_client(self.key_id).send_request(request)
            if not response.is_stream_consumed:  # an empty body (a 3xx) is read already
                await response.read()
        except AzureError as exc:
            error = translate(exc, operation, key_id=self.key_id.id)
        if error is not None:
            raise error
        return remote_key_operation_result(
            response.status_code, response.text(), response.headers, operation, self.key_id.id
        )


class AsyncKeyVaultKeyWrapper:
    """An ``AsyncKeyWrapper`` over one versioned key (build with ``AsyncKeyVaultAdapter``)."""

    def __init__(self, version: _AsyncVersion, algorithm: WrapAlgorithm, config: AdapterConfig):
        if algorithm is WrapAlgorithm.RSA1_5:
            require_unwrap_allowed(algorithm, allow_legacy_rsa1_5=config.allow_legacy_rsa1_5)
        self._version = version
        self._algorithm = algorithm
        self._config = config

    @property
    def key_id(self) -> str:
        return self._version.key_id.id

    @property
    def algorithm(self) -> WrapAlgorithm:
        return self._algorithm

    async def wrap(self, dek: DataKey) -> bytes:
        """Wrap ``dek`` (locally with the public key when the key allows it).

        Raises:
            UnsupportedAlgorithmError, KeyDisabledError, KeyNotFoundError, AccessDeniedError,
                ThrottledError, TransientServiceError: as the vault's wrapKey answers.
        """
        require_wrap_allowed(self._algorithm)
        client = await self._version.client()
        key = self._version.key
        if key is not None:
            check_algorithm_fits(key, self._algorithm, self.key_id)
            check_wrap_allowed_now(key, self.key_id, self._config.clock())
        if is_symmetric(key):
            return await self._version.remote("wrapKey", self._algorithm, dek.reveal())
        error: KeywardError | None = None
        try:
            result = await client.wrap_key(SDK_ALGORITHMS[self._algorithm], dek.reveal())
            return result.encrypted_key
        except ValueError:
            error = KeyDisabledError(f"{self.key_id} is outside its nbf/exp window")
        except AzureError as exc:
            error = translate(exc, "wrapKey", key_id=self.key_id)
        raise error

    async def unwrap(self, wrapped: bytes) -> DataKey:
        """Unwrap in the vault.

        Raises:
            UnsupportedAlgorithmError, IntegrityError, KeyDisabledError, KeyNotFoundError,
                AccessDeniedError, ThrottledError, TransientServiceError: as
                the vault's unwrapKey answers.
        """
        require_unwrap_allowed(
            self._algorithm, allow_legacy_rsa1_5=self._config.allow_legacy_rsa1_5
        )
        client = await self._version.client()
        check_algorithm_fits(self._version.key, self._algorithm, self.key_id)
        if is_symmetric(self._version.key):
            return DataKey(await self._version.remote("unwrapKey", self._algorithm, wrapped))
        error: KeywardError | None = None
        try:
            result = await client.unwrap_key(SDK_ALGORITHMS[self._algorithm], wrapped)
        except AzureError as exc:
            error = translate(exc, "unwrapKey", key_id=self.key_id)
        if error is not None:
            raise error
        return DataKey(result.key)

    def __repr__(self) -> str:
        return f"AsyncKeyVaultKeyWrapper(key_id={self.key_id!r}, algorithm={self._algorithm.value})"


class AsyncKeyVaultAdapter:
    """Key wrappers and key metadata over ``aio`` clients; the rewrap engine's key source.

    Satisfies the rewrap engine's ``KeyVersionSource`` port: ``newest_enabled_version``,
    ``versions`` and ``wrapper(key_id, algorithm)``. All clients share one aiohttp session
    (created on first use inside the running loop, with one TLS context); close it with
    ``await adapter.close()`` or ``async with``.

    With ``lean_unwrap=True`` the wrappers send unwrap as one direct REST call on the shared
    session (the same bearer token the SDK would use) instead of through the SDK pipeline;
    wrap stays the SDK's local wrap. See ``_keyvault_rest`` for why and what it costs.
    """

    def __init__(
        self,
        credential: AsyncTokenCredential,
        allow_list: VaultAllowList,
        *,
        ca_bundle: str | None = None,
        api_version: str = API_VERSION,
        retries: int = 0,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
        read_timeout: float = DEFAULT_READ_TIMEOUT,
        clock: Clock | None = None,
        allow_legacy_rsa1_5: bool = False,
        key_refresh_seconds: float = DEFAULT_KEY_REFRESH_SECONDS,
        lean_unwrap: bool = False,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
    ) -> None:
        """Record the settings; no session or network call until first use.

        Args:
            credential: any azure-core async ``TokenCredential`` (managed identity in Azure).
            allow_list: the vaults keyward may call; checked before every call.
            ca_bundle: CA file that verifies the vault's TLS certificate (the emulator's);
                ``None`` uses the system's CAs. Verification cannot be turned off.
            api_version: Key Vault REST api-version.
            retries: SDK-level retries (0: the caller retries, honouring Retry-After).
            connect_timeout: seconds to connect.
            read_timeout: seconds to wait for a response.
            clock: current UTC time for nbf/exp checks (tests inject the emulator's clock).
            allow_legacy_rsa1_5: allow RSA1_5 *unwrap* (never wrap).
            key_refresh_seconds: how long a fetched key's attributes are trusted.
            lean_unwrap: unwrap with one direct REST call (see the class).
            max_connections: per host, for concurrent unwraps.

        Raises:
            ConfigurationError: ``ca_bundle`` is not a path, or ``allow_list`` is not one.
        """
        self.config = AdapterConfig(
            allow_list,
            ca_bundle=ca_bundle,
            api_version=api_version,
            retries=retries,
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            clock=clock,
            allow_legacy_rsa1_5=allow_legacy_rsa1_5,
            key_refresh_seconds=key_refresh_seconds,
        )
        self._credential = credential
        self._lean = lean_unwrap
        self._max_connections = max_connections
        self._session: Any = None
        self._transport: AioHttpTransport | None = None
        self._key_clients: dict[str, AioKeyClient] = {}
        self._versions: dict[str, _AsyncVersion] = {}
        self._wrappers: dict[tuple[str, WrapAlgorithm], AsyncKeyWrapper] = {}
        self._rest: Any = None
        self._closed = False

    def _shared_transport(self) -> AioHttpTransport:
        if self._transport is None:
            import aiohttp

            connector = aiohttp.TCPConnector(
                ssl=self.config.ssl_context() if self.config.ca_bundle else True,
                limit_per_host=self._max_connections,
                keepalive_timeout=30,
            )
            # Key Vault sets no cookies and sends no compressed bodies: skip both layers.
            self._session = aiohttp.ClientSession(
                connector=connector, auto_decompress=False, cookie_jar=aiohttp.DummyCookieJar()
            )
            # connection_verify=True: the connector's TLS context (built once) applies. A CA
            # path here would make azure-core build a new SSLContext on every request, which
            # costs CPU and defeats connection reuse (new context, new pool key).
            self._transport = AioHttpTransport(
                session=self._session,
                session_owner=False,
                connection_verify=True,
                connection_timeout=self.config.connect_timeout,
                read_timeout=self.config.read_timeout,
            )
        return self._transport

    # -- wrappers ----------------------------------------------------------------------------

    async def wrapper(
        self, key_id: str, algorithm: WrapAlgorithm = DEFAULT_WRAP_ALGORITHM
    ) -> AsyncKeyWrapper:
        """The (cached) wrapper for the versioned ``key_id``; no network call until first use.

        Raises:
            KeyIdError: malformed or unversioned key id.
            VaultNotAllowedError: the vault is not on the allow-list.
            UnsupportedAlgorithmError: RSA1_5 without ``allow_legacy_rsa1_5``.
        """
        return self.wrapper_now(key_id, algorithm)

    def wrapper_now(
        self, key_id: str, algorithm: WrapAlgorithm = DEFAULT_WRAP_ALGORITHM
    ) -> AsyncKeyWrapper:
        """:meth:`wrapper` for callers outside a coroutine (same checks, same cache).

        Raises:
            KeyIdError, VaultNotAllowedError, UnsupportedAlgorithmError: as :meth:`wrapper`.
        """
        parsed = self.config.check(key_id)
        cached = self._wrappers.get((parsed.id, algorithm))
        if cached is not None:
            return cached
        version = self._versions.get(parsed.id)
        if version is None:
            version = self._versions[parsed.id] = _AsyncVersion(self, parsed)
        sdk_wrapper = AsyncKeyVaultKeyWrapper(version, algorithm, self.config)
        wrapper: AsyncKeyWrapper = sdk_wrapper
        if self._lean:
            from shared.adapters._keyvault_rest import LeanAsyncKeyVaultKeyWrapper

            wrapper = LeanAsyncKeyVaultKeyWrapper(sdk_wrapper, parsed, self._rest_client())
        self._wrappers[(parsed.id, algorithm)] = wrapper
        return wrapper

    def _rest_client(self) -> Any:
        if self._rest is None:
            from shared.adapters._keyvault_rest import RestUnwrapClient

            self._rest = RestUnwrapClient(
                self._credential,
                session_factory=self._shared_session,
                api_version=self.config.api_version,
                dev_origins=frozenset(self.config.allow_list.dev_origins),
                read_timeout=self.config.read_timeout,
                connect_timeout=self.config.connect_timeout,
            )
        return self._rest

    def _shared_session(self) -> Any:
        self._shared_transport()
        return self._session

    def _key_client(self, key_id: KeyId) -> AioKeyClient:
        return self.vault_key_client(key_id.vault_url)

    def vault_key_client(self, vault_url: str) -> AioKeyClient:
        """The SDK ``KeyClient`` of an allowed vault, on the adapter's shared transport.

        One per vault and process: the key administration (``KeyVaultAdmin``: list keys,
        rotate) uses these too, so keyward holds one set of Key Vault clients.

        Raises:
            VaultNotAllowedError: ``vault_url`` is not on the allow-list (no client is made).
        """
        vault_url = vault_url.rstrip("/").lower()
        client = self._key_clients.get(vault_url)
        if client is None:
            if not any(vault.url == vault_url for vault in self.config.allow_list.vaults):
                raise VaultNotAllowedError(
                    f"vault {vault_url} is not on the keyward vault allow-list"
                )
            client = AioKeyClient(
                vault_url,
                self._credential,
                **self.config.client_kwargs(vault_url, self._shared_transport()),
            )
            self._key_clients[vault_url] = client
        return client

    async def _crypto_client(
        self, key_id: KeyId
    ) -> tuple[AioCryptographyClient, KeyVaultKey | None]:
        kwargs = self.config.client_kwargs(key_id.vault_url, self._shared_transport())
        error: KeywardError | None = None
        try:
            key = await self._key_client(key_id).get_key(key_id.name, key_id.version)
        except AzureError as exc:
            error = translate(exc, "get", key_id=key_id.id)
        if error is not None:
            if isinstance(error, AccessDeniedError):
                return AioCryptographyClient(key_id.id, self._credential, **kwargs), None
            raise error
        if (key.properties.version or "").lower() != key_id.version:
            raise KeyNotFoundError(f"the vault answered another version for {key_id.id}")
        return AioCryptographyClient(key, self._credential, **kwargs), key

    # -- metadata ----------------------------------------------------------------------------

    async def versions(self, key_ref: str) -> list[KeyVersionProperties]:
        """Every version of ``key_ref``, any order.

        Raises:
            KeyIdError, VaultNotAllowedError: before any call.
            KeyNotFoundError, AccessDeniedError, ThrottledError, TransientServiceError.
        """
        key_id = self.config.check(key_ref, require_version=False)
        now = self.config.clock()
        error: KeywardError | None = None
        try:
            pager = self._key_client(key_id).list_properties_of_key_versions(key_id.name)
            versions = [version_properties(p, now, None) async for p in pager]
        except AzureError as exc:
            error = translate(exc, "list versions", key_id=key_id.key_ref)
        if error is not None:
            raise error
        if not versions:
            # Key Vault answers an unknown or deleted key's versions with 200 and an empty
            # page, not 404; a key always has a version, so none means no such key.
            raise KeyNotFoundError(f"{key_id.key_ref} does not exist (no versions)", status=404)
        return versions

    async def is_soft_deleted(self, key_ref: str) -> bool:
        """Whether the vault holds ``key_ref`` among its soft-deleted keys (recoverable).

        Raises:
            KeyIdError, VaultNotAllowedError: before any network call.
            AccessDeniedError, ThrottledError, TransientServiceError: as the vault answers.
        """
        key_id = self.config.check(key_ref, require_version=False)
        client = self._key_client(key_id)
        try:
            await client.get_deleted_key(key_id.name)
        except AzureError as exc:
            error = translate(exc, "get deleted key", key_id=key_id.key_ref)
            if isinstance(error, KeyNotFoundError):
                return False
            raise error from None
        return True

    async def newest_enabled_version(self, key_ref: str) -> str:
        """The newest version usable now, by creation time, asked of the vault.

        Raises:
            KeyNotFoundError: no such key, or no usable version.
            KeyIdError, VaultNotAllowedError, AccessDeniedError, ThrottledError,
                TransientServiceError: as for :meth:`versions`.
        """
        candidates = newest_candidates(await self.versions(key_ref))
        if not candidates:
            raise KeyNotFoundError(f"{key_ref} has no enabled version", status=404)
        if len(candidates) == 1:
            return candidates[0].version
        return break_tie(candidates, await self._current_version(key_ref))

    async def _current_version(self, key_ref: str) -> str | None:
        """The version ``GET /keys/{name}`` answers (None if the vault refuses to say).

        Raises:
            ThrottledError, TransientServiceError, AccessDeniedError, KeyNotFoundError.
        """
        key_id = self.config.check(key_ref, require_version=False)
        error: KeywardError | None = None
        try:
            key = await self._key_client(key_id).get_key(key_id.name)
        except AzureError as exc:
            error = translate(exc, "get", key_id=key_id.key_ref)
        if isinstance(error, KeyDisabledError):
            return None  # the current version is disabled: not a candidate anyway
        if error is not None:
            raise error
        return key.properties.version

    async def key_version(self, key_id: str) -> KeyVersionProperties:
        """One version's attributes and ``key_ops`` (``GET /keys/{name}/{version}``); the
        rewrap target's proof reads them (listing versions gives no ``key_ops``).

        Raises:
            KeyIdError, VaultNotAllowedError: before any call.
            KeyNotFoundError, KeyDisabledError, AccessDeniedError, ThrottledError,
                TransientServiceError: as the vault answered.
        """
        return (await self.public_key(key_id)).properties

    async def public_key(self, key_id: str) -> PublicKeyInfo:
        """Fetch a key version's public half and attributes.

        Raises:
            KeyIdError, VaultNotAllowedError: before any call.
            KeyNotFoundError, KeyDisabledError, AccessDeniedError, ThrottledError,
                TransientServiceError: as the vault answered.
        """
        parsed = self.config.check(key_id, require_version=False)
        error: KeywardError | None = None
        try:
            key = await self._key_client(parsed).get_key(parsed.name, parsed.version)
        except AzureError as exc:
            error = translate(exc, "get", key_id=parsed.id)
        if error is not None:
            raise error
        return public_key_info(key, self.config.clock())

    # -- lifecycle ---------------------------------------------------------------------------

    async def close(self) -> None:
        """Close every client and the shared session."""
        if self._closed:
            return
        self._closed = True
        for client in self._key_clients.values():
            await client.close()
        for version in self._versions.values():
            if version._client is not None:
                await version._client.close()
        if self._session is not None:
            await self._session.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    def __repr__(self) -> str:
        return (
            f"AsyncKeyVaultAdapter(vaults={[v.url for v in self.config.allow_list.vaults]}, "
            f"lean_unwrap={self._lean})"
        )
