"""The synchronous Key Vault adapter (see ``shared.adapters.keyvault`` for the design).

Development only: the Function App uses the ``aio`` adapter; this twin serves the demo, the
benchmarks and the tests, which wrap and unwrap from synchronous code (seeding, checks).
"""

from __future__ import annotations

import threading
import time
from types import TracebackType
from typing import Self

from azure.core.credentials import TokenCredential
from azure.core.exceptions import AzureError
from azure.core.pipeline.transport import RequestsTransport
from azure.keyvault.keys import KeyClient, KeyVaultKey
from azure.keyvault.keys.crypto import CryptographyClient

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
)


class _SyncVersion:
    """One key version: its fetched key and its CryptographyClient (shared by wrappers)."""

    def __init__(self, adapter: KeyVaultAdapter, key_id: KeyId) -> None:
        self._adapter = adapter
        self.key_id = key_id
        self._lock = threading.Lock()
        self._client: CryptographyClient | None = None
        self.key: KeyVaultKey | None = None
        self._fetched_at = 0.0

    def client(self) -> CryptographyClient:
        """The version's CryptographyClient, (re)fetching the key when stale.

        Raises:
            ServiceError subclasses: the fetch failed (mapped).
        """
        with self._lock:
            stale = time.monotonic() - self._fetched_at > self._adapter.config.key_refresh_seconds
            if self._client is None or stale:
                self._client, self.key = self._adapter._crypto_client(self.key_id)
                self._fetched_at = time.monotonic()
            return self._client

    def remote(self, operation: str, algorithm: WrapAlgorithm, value: bytes) -> bytes:
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
            response = self._adapter._key_client(self.key_id).send_request(request)
            if not response.is_stream_consumed:  # an empty body (a 3xx) is read already
                response.read()
        except AzureError as exc:
            error = translate(exc, operation, key_id=self.key_id.id)
        if error is not None:
            raise error
        return remote_key_operation_result(
            response.status_code, response.text(), response.headers, operation, self.key_id.id
        )


class KeyVaultKeyWrapper:
    """A ``KeyWrapper`` over one versioned Key Vault key (build with ``KeyVaultAdapter``).

    ``wrap`` runs locally with the public key when the key permits ``wrapKey`` (the SDK's
    choice), after refusing a disabled, expired or not-yet-valid version; ``unwrap`` is sent
    to the vault.
    """

    def __init__(self, version: _SyncVersion, algorithm: WrapAlgorithm, config: AdapterConfig):
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

    def wrap(self, dek: DataKey) -> bytes:
        """Wrap ``dek`` under this key version.

        Raises:
            UnsupportedAlgorithmError: RSA1_5, or an algorithm that does not fit the key type.
            KeyDisabledError: the version is disabled, expired or not yet valid.
            KeyNotFoundError, AccessDeniedError, ThrottledError, TransientServiceError: as
                the vault answered the key fetch (or a remote wrap).
        """
        require_wrap_allowed(self._algorithm)
        client = self._version.client()
        key = self._version.key
        if key is not None:
            check_algorithm_fits(key, self._algorithm, self.key_id)
            check_wrap_allowed_now(key, self.key_id, self._config.clock())
        if is_symmetric(key):
            return self._version.remote("wrapKey", self._algorithm, dek.reveal())
        error: KeywardError | None = None
        try:
            return client.wrap_key(SDK_ALGORITHMS[self._algorithm], dek.reveal()).encrypted_key
        except ValueError:
            # The SDK's own nbf/exp check (system clock) refused the local wrap.
            error = KeyDisabledError(f"{self.key_id} is outside its nbf/exp window")
        except AzureError as exc:
            error = translate(exc, "wrapKey", key_id=self.key_id)
        raise error

    def unwrap(self, wrapped: bytes) -> DataKey:
        """Unwrap in the vault.

        Raises:
            UnsupportedAlgorithmError: RSA1_5 not enabled, or an algorithm that does not fit.
            IntegrityError: the vault could not unwrap these bytes with this key (400).
            KeyDisabledError, KeyNotFoundError, AccessDeniedError, ThrottledError,
                TransientServiceError: as the vault answered.
        """
        require_unwrap_allowed(
            self._algorithm, allow_legacy_rsa1_5=self._config.allow_legacy_rsa1_5
        )
        client = self._version.client()
        check_algorithm_fits(self._version.key, self._algorithm, self.key_id)
        if is_symmetric(self._version.key):
            return DataKey(self._version.remote("unwrapKey", self._algorithm, wrapped))
        error: KeywardError | None = None
        try:
            result = client.unwrap_key(SDK_ALGORITHMS[self._algorithm], wrapped)
        except AzureError as exc:
            error = translate(exc, "unwrapKey", key_id=self.key_id)
        if error is not None:
            raise error
        return DataKey(result.key)

    def __repr__(self) -> str:
        return f"KeyVaultKeyWrapper(key_id={self.key_id!r}, algorithm={self._algorithm.value})"


class KeyVaultAdapter:
    """Key wrappers and key metadata for the vaults on an allow-list (synchronous).

    Example::

        from azure.identity import DefaultAzureCredential
        adapter = KeyVaultAdapter(DefaultAzureCredential(), VaultAllowList.parse("contoso-kv"))
        wrapper = adapter.wrapper("https://contoso-kv.vault.azure.net/keys/kek/<version>")
        wrapped = wrapper.wrap(dek)

    Against the emulator: ``VaultAllowList.parse("emu-kv=https://127.0.0.1:8443")`` and
    ``ca_bundle="<the emulator's CA file>"``.
    """

    def __init__(
        self,
        credential: TokenCredential,
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
    ) -> None:
        """Set up the shared session; makes no network call.

        Args:
            credential: any azure-core ``TokenCredential`` (``DefaultAzureCredential`` in
                production).
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

        Raises:
            ConfigurationError: ``ca_bundle`` is not a path, or ``allow_list`` is not one.
        """
        import requests

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
        self._session = requests.Session()
        adapter = requests.adapters.HTTPAdapter(
            pool_connections=8, pool_maxsize=DEFAULT_MAX_CONNECTIONS
        )
        self._session.mount("https://", adapter)
        self._transport = RequestsTransport(
            session=self._session,
            session_owner=False,
            connection_verify=self.config.ca_bundle or True,
            # Timeouts belong to the transport: a client's constructor kwargs only configure
            # a transport the client builds itself.
            connection_timeout=self.config.connect_timeout,
            read_timeout=self.config.read_timeout,
        )
        self._lock = threading.Lock()
        self._key_clients: dict[str, KeyClient] = {}
        self._versions: dict[str, _SyncVersion] = {}
        self._wrappers: dict[tuple[str, WrapAlgorithm], KeyVaultKeyWrapper] = {}
        self._closed = False

    # -- wrappers ----------------------------------------------------------------------------

    def wrapper(
        self, versioned_key_id: str, algorithm: WrapAlgorithm = DEFAULT_WRAP_ALGORITHM
    ) -> KeyVaultKeyWrapper:
        """The (cached) wrapper for ``versioned_key_id``; no network call until first use.

        Raises:
            KeyIdError: malformed or unversioned key id.
            VaultNotAllowedError: the vault is not on the allow-list.
            UnsupportedAlgorithmError: RSA1_5 without ``allow_legacy_rsa1_5``.
        """
        key_id = self.config.check(versioned_key_id)
        with self._lock:
            cached = self._wrappers.get((key_id.id, algorithm))
            if cached is not None:
                return cached
            version = self._versions.get(key_id.id)
            if version is None:
                version = self._versions[key_id.id] = _SyncVersion(self, key_id)
            wrapper = KeyVaultKeyWrapper(version, algorithm, self.config)
            self._wrappers[(key_id.id, algorithm)] = wrapper
            return wrapper

    def _key_client(self, key_id: KeyId) -> KeyClient:
        with self._lock:
            client = self._key_clients.get(key_id.vault_url)
            if client is None:
                client = KeyClient(
                    key_id.vault_url,
                    self._credential,
                    **self.config.client_kwargs(key_id.vault_url, self._transport),
                )
                self._key_clients[key_id.vault_url] = client
            return client

    def _crypto_client(self, key_id: KeyId) -> tuple[CryptographyClient, KeyVaultKey | None]:
        """Fetch the key once and build its CryptographyClient.

        A 403 for lack of ``get`` permission falls back to a remote-only client, as the SDK
        does; anything else is mapped and raised.
        """
        kwargs = self.config.client_kwargs(key_id.vault_url, self._transport)
        error: KeywardError | None = None
        try:
            key = self._key_client(key_id).get_key(key_id.name, key_id.version)
        except AzureError as exc:
            error = translate(exc, "get", key_id=key_id.id)
        if error is not None:
            if isinstance(error, AccessDeniedError):
                return CryptographyClient(key_id.id, self._credential, **kwargs), None
            raise error
        if (key.properties.version or "").lower() != key_id.version:
            raise KeyNotFoundError(f"the vault answered another version for {key_id.id}")
        return CryptographyClient(key, self._credential, **kwargs), key

    # -- metadata ----------------------------------------------------------------------------

    def versions(self, key_ref: str) -> list[KeyVersionProperties]:
        """Every version of ``key_ref`` (an unversioned or versioned key id), any order.

        Raises:
            KeyIdError, VaultNotAllowedError: before any call.
            KeyNotFoundError, AccessDeniedError, ThrottledError, TransientServiceError.
        """
        key_id = self.config.check(key_ref, require_version=False)
        now = self.config.clock()
        error: KeywardError | None = None
        try:
            pager = self._key_client(key_id).list_properties_of_key_versions(key_id.name)
            versions = [version_properties(p, now, None) for p in pager]
        except AzureError as exc:
            error = translate(exc, "list versions", key_id=key_id.key_ref)
        if error is not None:
            raise error
        if not versions:
            # Key Vault answers an unknown or deleted key's versions with 200 and an empty
            # page, not 404; a key always has a version, so none means no such key.
            raise KeyNotFoundError(f"{key_id.key_ref} does not exist (no versions)", status=404)
        return versions

    def newest_enabled_version(self, key_ref: str) -> str:
        """The newest version usable now (enabled, nbf <= now < exp), by creation time.

        Raises:
            KeyNotFoundError: no such key, or no usable version.
            KeyIdError, VaultNotAllowedError, AccessDeniedError, ThrottledError,
                TransientServiceError: as for :meth:`versions`.
        """
        candidates = newest_candidates(self.versions(key_ref))
        if not candidates:
            raise KeyNotFoundError(f"{key_ref} has no enabled version", status=404)
        if len(candidates) == 1:
            return candidates[0].version
        return break_tie(candidates, self._current_version(key_ref))

    def _current_version(self, key_ref: str) -> str | None:
        """The version ``GET /keys/{name}`` answers (None if the vault refuses to say).

        Raises:
            ThrottledError, TransientServiceError, AccessDeniedError, KeyNotFoundError.
        """
        key_id = self.config.check(key_ref, require_version=False)
        error: KeywardError | None = None
        try:
            key = self._key_client(key_id).get_key(key_id.name)
        except AzureError as exc:
            error = translate(exc, "get", key_id=key_id.key_ref)
        if isinstance(error, KeyDisabledError):
            return None  # the current version is disabled: not a candidate anyway
        if error is not None:
            raise error
        return key.properties.version

    def public_key(self, key_id: str) -> PublicKeyInfo:
        """Fetch a key version's public half and attributes (``get`` permission).

        Raises:
            KeyIdError, VaultNotAllowedError: before any call.
            KeyNotFoundError, KeyDisabledError, AccessDeniedError, ThrottledError,
                TransientServiceError: as the vault answered.
        """
        parsed = self.config.check(key_id, require_version=False)
        error: KeywardError | None = None
        try:
            key = self._key_client(parsed).get_key(parsed.name, parsed.version)
        except AzureError as exc:
            error = translate(exc, "get", key_id=parsed.id)
        if error is not None:
            raise error
        return public_key_info(key, self.config.clock())

    # -- lifecycle ---------------------------------------------------------------------------

    def close(self) -> None:
        """Close every client and the shared session."""
        if self._closed:
            return
        self._closed = True
        for client in self._key_clients.values():
            client.close()
        for version in self._versions.values():
            if version._client is not None:
                version._client.close()
        self._session.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"KeyVaultAdapter(vaults={[v.url for v in self.config.allow_list.vaults]})"
