"""What the Key Vault adapters share: settings, key checks, records, errors.

Part of the Key Vault adapter (see ``shared.adapters.keyvault``); the other modules in
``shared`` that import ``azure.keyvault`` are its siblings ``_keyvault_aio`` and
``_keyvault_admin``. The synchronous twin for development tools (``devtools.keyvault_sync``)
builds on this module too.
"""

from __future__ import annotations

import json
import logging
import ssl
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum
from typing import Any

from azure.core.rest import HttpRequest
from azure.keyvault.keys import KeyProperties, KeyVaultKey
from azure.keyvault.keys.crypto import KeyWrapAlgorithm
from cryptography.hazmat.primitives.asymmetric import rsa

from shared.adapters._azure_errors import (
    keyvault_error,
    parse_error_body,
    parse_retry_after,
)
from shared.adapters._pipeline import pinned_client_kwargs
from shared.crypto import (
    KeyId,
    VaultAllowList,
    WrapAlgorithm,
    b64_decode_any,
    b64url_encode,
    rsa_public_key_from_jwk,
)
from shared.errors import (
    ConfigurationError,
    IntegrityError,
    KeyDisabledError,
    UnsupportedAlgorithmError,
)

#: Key Vault REST api-version the adapter speaks (azure-keyvault-keys 4.11's default).
API_VERSION = "2025-07-01"
#: How long a fetched key (public half and attributes) is trusted before it is fetched again,
#: so a version disabled in the vault stops being used for local wraps within this time.
DEFAULT_KEY_REFRESH_SECONDS = 300.0
#: Socket connect / read timeouts (seconds) for every Key Vault request.
DEFAULT_CONNECT_TIMEOUT = 10.0
DEFAULT_READ_TIMEOUT = 30.0
#: Connections kept open per vault host by the shared session.
DEFAULT_MAX_CONNECTIONS = 64

SDK_ALGORITHMS = {
    WrapAlgorithm.RSA_OAEP_256: KeyWrapAlgorithm.rsa_oaep_256,
    WrapAlgorithm.RSA_OAEP: KeyWrapAlgorithm.rsa_oaep,
    WrapAlgorithm.A256KW: KeyWrapAlgorithm.aes_256,
    WrapAlgorithm.RSA1_5: KeyWrapAlgorithm.rsa1_5,
}
RSA_TYPES = frozenset({"RSA", "RSA-HSM"})
AES_TYPES = frozenset({"oct", "oct-HSM"})

Clock = Callable[[], datetime]

#: See :meth:`AdapterConfig.client_kwargs`.
QUIET_HTTP_LOGGER = logging.getLogger("keyward.adapters.keyvault.http")
QUIET_HTTP_LOGGER.setLevel(logging.WARNING)


def utc_now() -> datetime:
    return datetime.now(UTC)


def text(value: object) -> str:
    """An SDK enum member's wire value (``str()`` of a str-Enum gives its qualified name)."""
    return str(value.value) if isinstance(value, Enum) else str(value)


@dataclass(frozen=True)
class KeyVersionProperties:
    """What the vault says about one version of a key (from list versions or get key).

    Attributes:
        key_id: the full versioned key id.
        version: the 32-hex version (lower case).
        enabled: whether the vault would use it now: enabled and within ``nbf``/``exp``.
        attributes_enabled: the raw ``enabled`` attribute.
        created: when the version was created (orders "newer" and "older").
        not_before: the ``nbf`` attribute, if set.
        expires_on: the ``exp`` attribute, if set.
        key_type: ``RSA``, ``RSA-HSM``, ``oct-HSM``... when known (list versions omits it).
        key_size: the RSA modulus size in bits, when known.
        key_ops: the permitted operations, when known.
    """

    key_id: str
    version: str
    enabled: bool
    attributes_enabled: bool
    created: datetime
    not_before: datetime | None = None
    expires_on: datetime | None = None
    key_type: str | None = None
    key_size: int | None = None
    key_ops: tuple[str, ...] | None = None


@dataclass(frozen=True)
class PublicKeyInfo:
    """A key version's public half, as Key Vault returns it.

    Attributes:
        key_id: the full versioned key id.
        key_type: the JWK ``kty``.
        key_ops: the permitted operations.
        rsa_public_key: the RSA public key, for RSA key types; ``None`` for ``oct-HSM``.
        properties: the version's attributes.
    """

    key_id: str
    key_type: str
    key_ops: tuple[str, ...]
    rsa_public_key: rsa.RSAPublicKey | None
    properties: KeyVersionProperties


def usable_now(
    enabled: bool | None, not_before: datetime | None, expires_on: datetime | None, now: datetime
) -> bool:
    """Whether a version with these attributes may wrap now (enabled, nbf <= now < exp)."""
    if not enabled:
        return False
    if not_before is not None and now < not_before:
        return False
    return not (expires_on is not None and now >= expires_on)


def version_properties(
    props: KeyProperties, now: datetime, key: KeyVaultKey | None
) -> KeyVersionProperties:
    """keyward's record of one version (``key`` adds type, size and ops when fetched)."""
    created = props.created_on or datetime.fromtimestamp(0, UTC)
    key_type = text(key.key_type) if key is not None and key.key_type else None
    key_size = None
    key_ops = None
    if key is not None:
        jwk_n = getattr(key.key, "n", None)
        if jwk_n:
            key_size = len(jwk_n) * 8
        key_ops = tuple(text(op) for op in key.key_operations or ())
    return KeyVersionProperties(
        key_id=str(props.id),
        version=(props.version or "").lower(),
        enabled=usable_now(props.enabled, props.not_before, props.expires_on, now),
        attributes_enabled=bool(props.enabled),
        created=created,
        not_before=props.not_before,
        expires_on=props.expires_on,
        key_type=key_type,
        key_size=key_size,
        key_ops=key_ops,
    )


def check_wrap_allowed_now(key: KeyVaultKey, key_id: str, now: datetime) -> None:
    """Refuse a local wrap the vault itself would refuse: disabled, expired, not yet valid.

    Raises:
        KeyDisabledError: with code ``KeyDisabled``, ``KeyExpired`` or ``KeyNotYetValid``.
    """
    props = key.properties
    if not props.enabled:
        raise KeyDisabledError(f"{key_id} is disabled", code="KeyDisabled")
    if props.not_before is not None and now < props.not_before:
        raise KeyDisabledError(
            f"{key_id} is not valid before {props.not_before.isoformat()}", code="KeyNotYetValid"
        )
    if props.expires_on is not None and now >= props.expires_on:
        raise KeyDisabledError(
            f"{key_id} expired at {props.expires_on.isoformat()}", code="KeyExpired"
        )


def check_algorithm_fits(key: KeyVaultKey | None, algorithm: WrapAlgorithm, key_id: str) -> None:
    """Raises UnsupportedAlgorithmError when ``algorithm`` cannot work with the key's type."""
    if key is None or not key.key_type:
        return
    kty = text(key.key_type)
    if algorithm.is_rsa and kty not in RSA_TYPES:
        raise UnsupportedAlgorithmError(f"{algorithm.value} needs an RSA key; {key_id} is {kty}")
    if not algorithm.is_rsa and kty not in AES_TYPES:
        raise UnsupportedAlgorithmError(f"{algorithm.value} needs an AES key; {key_id} is {kty}")


def check_ca_bundle(ca_bundle: object) -> str | None:
    """The CA file path, or None for the system CAs.

    Raises:
        ConfigurationError: anything else (``False`` above all: verification stays on).
    """
    if ca_bundle is None:
        return None
    if not isinstance(ca_bundle, str) or not ca_bundle:
        # In particular False: TLS verification is never turned off.
        raise ConfigurationError("ca_bundle must be a path to a CA file (or None for system CAs)")
    return ca_bundle


class AdapterConfig:
    """Settings shared by the sync and async adapters."""

    def __init__(
        self,
        allow_list: VaultAllowList,
        *,
        ca_bundle: str | None,
        api_version: str,
        retries: int,
        connect_timeout: float,
        read_timeout: float,
        clock: Clock | None,
        allow_legacy_rsa1_5: bool,
        key_refresh_seconds: float,
    ) -> None:
        if not isinstance(allow_list, VaultAllowList):
            raise ConfigurationError("allow_list must be a VaultAllowList")
        self.allow_list = allow_list
        self.ca_bundle = check_ca_bundle(ca_bundle)
        self.api_version = api_version
        self.retries = retries
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.clock = clock or utc_now
        self.allow_legacy_rsa1_5 = allow_legacy_rsa1_5
        self.key_refresh_seconds = key_refresh_seconds

    def client_kwargs(self, vault_url: str, transport: Any) -> dict[str, Any]:
        """Keyword arguments for a KeyClient / CryptographyClient talking to ``vault_url``.

        A lean pipeline: the shared transport (which carries the TLS settings and the
        connect/read timeouts), no request/response logging, SDK retries only when asked
        (the rewrap engine retries with Retry-After itself).
        """
        kwargs: dict[str, Any] = {
            "transport": transport,
            # The HTTP logging policy's own logger, pinned at WARNING: when the host sets the
            # root logger to INFO (Azure Functions does), the stock policy would sanitize the
            # URL and emit a dozen records per request. keyward logs one line per job instead.
            "logger": QUIET_HTTP_LOGGER,
            "api_version": self.api_version,
            "logging_enable": False,
            "retry_total": self.retries,
            # No redirects (a wrapKey body may be a plaintext DEK); pages and every other
            # request stay on the vault's origin (see ``_pipeline``).
            **pinned_client_kwargs(vault_url),
        }
        if vault_url in self.allow_list.dev_origins:
            # The emulator is not a *.vault.azure.net host; only an explicit allow-list entry
            # gets here. TLS is still verified against ca_bundle.
            kwargs["verify_challenge_resource"] = False
        return kwargs

    def check(self, key_id: str, *, require_version: bool = True) -> KeyId:
        """Parse ``key_id`` and check its vault against the allow-list (no I/O).

        Raises:
            KeyIdError: malformed key id or untrusted host.
            VaultNotAllowedError: a vault not on the allow-list.
        """
        return self.allow_list.check_key_id(key_id, require_version=require_version)

    def ssl_context(self) -> ssl.SSLContext:
        """One TLS context for the aiohttp session (built once, not per request)."""
        return ssl.create_default_context(cafile=self.ca_bundle)


def newest_candidates(versions: list[KeyVersionProperties]) -> list[KeyVersionProperties]:
    """The usable versions sharing the latest creation time (usually one).

    Key Vault's ``created`` has one-second resolution, so a key rotated within the second of
    its creation has two candidates; the caller breaks the tie with the key's current version.
    """
    usable = [v for v in versions if v.enabled]
    if not usable:
        return []
    latest = max(v.created for v in usable)
    return [v for v in usable if v.created == latest]


def break_tie(candidates: list[KeyVersionProperties], current: str | None) -> str:
    """The key's current version if it is a candidate, else the greatest version string."""
    versions = {c.version for c in candidates}
    if current is not None and current.lower() in versions:
        return current.lower()
    return max(versions)


def is_symmetric(key: KeyVaultKey | None) -> bool:
    """Whether ``key`` is an AES key (``oct`` / ``oct-HSM``).

    The SDK must never see such a key for "local" crypto: Key Vault returns no ``k`` for it,
    and azure-keyvault-keys 4.11.3 then builds its local provider on a fresh *random* AES key
    (``SymmetricKey(key_bytes=None)`` draws ``os.urandom``) and wraps with that, producing a
    wrap no one can ever unwrap. keyward sends every operation on AES keys to the vault.
    """
    return key is not None and bool(key.key_type) and text(key.key_type) in AES_TYPES


def remote_key_operation(
    key_id: KeyId, operation: str, algorithm: WrapAlgorithm, value: bytes
) -> HttpRequest:
    """The REST request for ``wrapkey`` / ``unwrapkey`` on ``key_id`` (relative to the vault)."""
    return HttpRequest(
        "POST",
        f"/keys/{key_id.name}/{key_id.version}/{operation}",
        json={"alg": algorithm.value, "value": b64url_encode(value)},
    )


def remote_key_operation_result(
    status: int, body: str | bytes, headers: Mapping[str, str], operation: str, key_id: str
) -> bytes:
    """The bytes of a ``KeyOperationResult``, or the mapped error.

    Raises:
        IntegrityError: a 400 on unwrap, or a malformed 200 answer.
        ServiceError subclasses / InvalidInputError: as
            :func:`~shared.adapters._azure_errors.keyvault_error` maps.
    """
    if status == 200:
        try:
            data = json.loads(body)
            value = data["value"]
            if not isinstance(value, str):
                raise TypeError
            return b64_decode_any(value)
        except (ValueError, KeyError, TypeError, RecursionError):
            raise IntegrityError(f"Key Vault {operation} on {key_id}: malformed answer") from None
    code, inner, message = parse_error_body(body)
    raise keyvault_error(
        status,
        operation=operation,
        key_id=key_id,
        code=code,
        inner_code=inner,
        service_message=message,
        retry_after=parse_retry_after(headers),
    )


def public_key_info(key: KeyVaultKey, now: datetime) -> PublicKeyInfo:
    props = version_properties(key.properties, now, key)
    kty = text(key.key_type)
    public: rsa.RSAPublicKey | None = None
    n, e = getattr(key.key, "n", None), getattr(key.key, "e", None)
    if kty in RSA_TYPES and n and e:
        public = rsa_public_key_from_jwk(bytes(n), bytes(e))
    return PublicKeyInfo(
        key_id=str(key.id),
        key_type=kty,
        key_ops=props.key_ops or (),
        rsa_public_key=public,
        properties=props,
    )
