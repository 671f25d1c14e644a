"""Microsoft Entra ID access tokens for the admin API, checked in the app (docs/admin-auth.md).

The tenant's OpenID Connect metadata (``{authority}/{tenant}/v2.0/.well-known/
openid-configuration``) names its ``issuer`` and ``jwks_uri``; the keys there are cached
and fetched again when a token names a key id (``kid``) not in the cache (Entra rolls its
signing keys over), at most once per :data:`MIN_REFRESH_SECONDS` so a stream of forged key
ids cannot make keyward hammer the endpoint, and at least once per :data:`MAX_KEYS_AGE`.

A token is accepted only if: its header's ``alg`` is ``RS256`` (``none``, ``HS*`` and
everything else are refused before any key is looked at, so a public key can never be used
as an HMAC secret); its signature verifies with the tenant's key of that ``kid``; ``exp``
and ``nbf`` hold (with :data:`LEEWAY_SECONDS` of clock skew); ``aud`` is one of the
configured audiences; ``tid`` is the configured tenant; and ``iss`` is that tenant's v2.0
issuer, ``{authority}/{tenant}/v2.0``. v1.0 tokens (issuer ``https://sts.windows.net/{tid}/``)
are refused: the app registration asks for v2.0 tokens (``requestedAccessTokenVersion: 2``).

Refusals are :class:`UnauthenticatedError` with a code per reason; no message holds the token
or a claim's value beyond the tenant and issuer it expected.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import jwt

from shared.errors import AdminAuthUnavailableError, UnauthenticatedError

#: The one signature algorithm accepted: what Entra ID signs access tokens with.
ALGORITHM = "RS256"
#: Clock skew allowed on ``exp`` and ``nbf``, in seconds.
LEEWAY_SECONDS = 60
#: A key id not in the cache fetches the keys again, but not more often than this.
MIN_REFRESH_SECONDS = 30.0
#: The keys are fetched again after this long even if every ``kid`` is known (a key Entra
#: revoked early disappears from the set).
MAX_KEYS_AGE = 24 * 3600.0
#: Claims every accepted token carries (Entra ID emits them in every v2.0 access token).
REQUIRED_CLAIMS = ("exp", "nbf", "iss", "aud", "tid", "oid")
_HTTP_TIMEOUT_SECONDS = 10.0
_V1_ISSUER = "https://sts.windows.net/"

#: GETs a URL and returns its JSON object (tests inject one; the default uses aiohttp).
JsonFetcher = Callable[[str], Awaitable[Mapping[str, Any]]]


def v2_issuer(authority: str, tenant_id: str) -> str:
    """The ``iss`` of the tenant's v2.0 tokens: ``https://login.microsoftonline.com/{tid}/v2.0``."""
    return f"{authority.rstrip('/')}/{tenant_id}/v2.0"


def metadata_url(authority: str, tenant_id: str) -> str:
    """The tenant's v2.0 OpenID Connect metadata document."""
    return f"{v2_issuer(authority, tenant_id)}/.well-known/openid-configuration"


class EntraTokenVerifier:
    """Verifies the admin API's bearer tokens against one tenant's signing keys."""

    def __init__(
        self,
        *,
        tenant_id: str,
        audiences: Sequence[str],
        authority: str,
        ca_bundle: str | None = None,
        fetch: JsonFetcher | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._tenant = tenant_id.lower()
        self._audiences = list(audiences)
        self._authority = authority.rstrip("/")
        self._issuer = v2_issuer(self._authority, self._tenant)
        self._ca_bundle = ca_bundle
        self._fetch = fetch or self._get_json
        self._clock = clock
        self._keys: dict[str, jwt.PyJWK] = {}
        self._fetched_at: float | None = None
        #: When the last fetch failed: within the floor the failure is answered again
        #: without a fetch (an outage of the authority is not multiplied by keyward's callers).
        self._failed_at: float | None = None
        self._lock = asyncio.Lock()
        self._session: aiohttp.ClientSession | None = None

    @property
    def issuer(self) -> str:
        return self._issuer

    async def verify(self, token: str) -> Mapping[str, Any]:
        """The claims of ``token`` if Entra ID issued it for this API in this tenant.

        Raises:
            UnauthenticatedError: ``MalformedToken``, ``UnsupportedAlgorithm``,
                ``UnknownSigningKey``, ``InvalidSignature``, ``TokenExpired``,
                ``TokenNotYetValid``, ``InvalidAudience``, ``WrongTenant``, ``InvalidIssuer``.
            AdminAuthUnavailableError: the metadata or keys could not be read (503).
        """
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise UnauthenticatedError("MalformedToken", "the bearer token is not a JWT") from None
        if header.get("alg") != ALGORITHM:
            raise UnauthenticatedError(
                "UnsupportedAlgorithm", f"tokens must be signed with {ALGORITHM}"
            )
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise UnauthenticatedError("MalformedToken", "the token's header names no key (kid)")
        key = await self._key(kid)
        claims = self._decode(token, key)
        if str(claims["tid"]).lower() != self._tenant:
            raise UnauthenticatedError(
                "WrongTenant", f"tokens of tenant {self._tenant} only are accepted"
            )
        if claims["iss"] != self._issuer:
            hint = (
                " (a v1.0 token: set the app registration's requestedAccessTokenVersion to 2)"
                if str(claims["iss"]).startswith(_V1_ISSUER)
                else ""
            )
            raise UnauthenticatedError(
                "InvalidIssuer", f"the token's issuer is not {self._issuer}{hint}"
            )
        if not isinstance(claims.get("azp"), str) or not claims["azp"]:
            # Every v2.0 access token names the client it was issued to (``azp``); an ID
            # token for keyward's app registration has the same issuer, audience, tenant and
            # object id but no ``azp``, and must not open the API.
            raise UnauthenticatedError(
                "NotAnAccessToken",
                "an access token for keyward's API is required (this one names no client: azp)",
            )
        return claims

    def _decode(self, token: str, key: jwt.PyJWK) -> dict[str, Any]:
        try:
            return jwt.decode(
                token,
                key.key,
                algorithms=[ALGORITHM],
                audience=self._audiences,
                leeway=LEEWAY_SECONDS,
                options={"require": list(REQUIRED_CLAIMS), "verify_iss": False},
            )
        except jwt.InvalidSignatureError:
            raise UnauthenticatedError(
                "InvalidSignature", "the token's signature does not verify"
            ) from None
        except jwt.ExpiredSignatureError:
            raise UnauthenticatedError("TokenExpired", "the token has expired") from None
        except jwt.ImmatureSignatureError:
            raise UnauthenticatedError(
                "TokenNotYetValid", "the token is not valid yet (nbf)"
            ) from None
        except jwt.InvalidAudienceError:
            raise UnauthenticatedError(
                "InvalidAudience", "the token was issued for another audience (aud)"
            ) from None
        except jwt.MissingRequiredClaimError as error:
            raise UnauthenticatedError(
                "MalformedToken", f"the token has no '{error.claim}' claim"
            ) from None
        except jwt.PyJWTError:
            raise UnauthenticatedError(
                "MalformedToken", "the bearer token is not a valid JWT"
            ) from None

    async def _key(self, kid: str) -> jwt.PyJWK:
        now = self._clock()
        stale = self._fetched_at is None or now - self._fetched_at > MAX_KEYS_AGE
        if not stale and kid in self._keys:
            return self._keys[kid]
        async with self._lock:
            now = self._clock()
            fetched, failed = self._fetched_at, self._failed_at
            stale = fetched is None or now - fetched > MAX_KEYS_AGE
            unknown = kid not in self._keys and (
                fetched is None or now - fetched >= MIN_REFRESH_SECONDS
            )
            if (stale or unknown) and (failed is None or now - failed >= MIN_REFRESH_SECONDS):
                try:
                    self._keys = await self._load_keys()
                    self._fetched_at, self._failed_at = self._clock(), None
                except AdminAuthUnavailableError:
                    # Keys cached from before still verify what they signed: keep them, and
                    # ask the authority again after the floor, not on every call.
                    self._failed_at = self._clock()
                    if not self._keys:
                        raise
            elif not self._keys:
                raise AdminAuthUnavailableError(
                    "SigningKeysUnavailable", "the signing keys could not be read (retrying)"
                )
        key = self._keys.get(kid)
        if key is None:
            raise UnauthenticatedError(
                "UnknownSigningKey", "the token is not signed by a key of the tenant"
            )
        return key

    async def _load_keys(self) -> dict[str, jwt.PyJWK]:
        """Raises: AdminAuthUnavailableError: metadata or keys unreadable or inconsistent."""
        metadata = await self._fetch_json(metadata_url(self._authority, self._tenant))
        if metadata.get("issuer") != self._issuer:
            raise AdminAuthUnavailableError(
                "SigningKeysUnavailable",
                f"the authority's metadata names another issuer than {self._issuer}",
            )
        jwks_uri = metadata.get("jwks_uri")
        if not isinstance(jwks_uri, str) or not _same_origin(jwks_uri, self._authority):
            raise AdminAuthUnavailableError(
                "SigningKeysUnavailable", "the authority's metadata has no jwks_uri on its host"
            )
        document = await self._fetch_json(jwks_uri)
        keys: dict[str, jwt.PyJWK] = {}
        for entry in document.get("keys") or ():
            if not isinstance(entry, dict) or entry.get("kty") != "RSA":
                continue
            if entry.get("use", "sig") != "sig" or not isinstance(entry.get("kid"), str):
                continue
            try:
                keys[entry["kid"]] = jwt.PyJWK(entry, algorithm=ALGORITHM)
            except jwt.PyJWTError:
                continue  # one unusable key does not hide the others
        if not keys:
            raise AdminAuthUnavailableError(
                "SigningKeysUnavailable", "the authority published no RSA signing key"
            )
        return keys

    async def _fetch_json(self, url: str) -> Mapping[str, Any]:
        try:
            document = await self._fetch(url)
        except AdminAuthUnavailableError:
            raise
        except (aiohttp.ClientError, TimeoutError, ValueError, OSError) as error:
            raise AdminAuthUnavailableError(
                "SigningKeysUnavailable",
                f"the signing keys could not be read from {self._authority}: "
                f"{type(error).__name__}",
            ) from None
        if not isinstance(document, Mapping):
            raise AdminAuthUnavailableError(
                "SigningKeysUnavailable", f"{self._authority} answered no JSON object"
            )
        return document

    async def _get_json(self, url: str) -> Mapping[str, Any]:
        if self._session is None:
            context = ssl.create_default_context(cafile=self._ca_bundle)
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(ssl=context),
                timeout=aiohttp.ClientTimeout(total=_HTTP_TIMEOUT_SECONDS),
            )
        async with self._session.get(url, allow_redirects=False) as response:
            if response.status != 200:
                raise ValueError(f"HTTP {response.status}")
            document = await response.json(content_type=None)
        if not isinstance(document, dict):
            raise ValueError("not a JSON object")
        return document

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def _same_origin(url: str, authority: str) -> bool:
    a, b = urlsplit(url), urlsplit(authority)
    return a.scheme == "https" and (a.hostname, a.port) == (b.hostname, b.port)
