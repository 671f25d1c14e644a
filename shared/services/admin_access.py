"""Who may call the admin API: a Microsoft Entra ID bearer token, then an app role.

Every admin route asks :class:`AdminGate` before it reads its body. The gate takes the
``Authorization`` header only: the token is checked by a :class:`TokenVerifier` (the
composition root gives ``shared.adapters.entra_tokens.EntraTokenVerifier``: signature by the
tenant's published keys, issuer, tenant, audience, lifetime), then the token's ``roles``
claim decides. Nothing else a caller sends is believed: the headers App Service
Authentication would add (``X-MS-CLIENT-PRINCIPAL``, ``X-MS-CLIENT-PRINCIPAL-ID``,
``X-MS-CLIENT-PRINCIPAL-NAME``...) are never read, so forging them gains nothing.

Two app roles, one home (:data:`READER_ROLE`, :data:`OPERATOR_ROLE`): the reader may read
(status, operations, verdicts, dry runs); the operator may also change things (rewrap,
retire, migrate, rotate KEKs, replay dead letters). An operator is a reader too. With no
verifier configured the gate refuses everything (fail closed): the API is never open.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Any, Protocol

from shared.errors import AdminAuthUnavailableError, ForbiddenError, UnauthenticatedError
from shared.services._caller import VIA_ADMIN_API, Caller

#: The app role that may read: status, operations, verdicts, dry runs.
READER_ROLE = "Keyward.Reader"
#: The app role that may also change things: rewrap, retire, migrate, rotate KEKs, replay.
OPERATOR_ROLE = "Keyward.Operator"
#: A bearer token longer than this is refused unread (Entra access tokens are a few KB).
MAX_TOKEN_CHARS = 16_384


class Access(enum.Enum):
    """What a route does: read, or change something (which needs the operator role)."""

    READ = "read"
    OPERATE = "operate"


#: The roles that grant each access: the operator role implies the reader's.
ROLES_GRANTING: Mapping[Access, frozenset[str]] = {
    Access.READ: frozenset({READER_ROLE, OPERATOR_ROLE}),
    Access.OPERATE: frozenset({OPERATOR_ROLE}),
}


class TokenVerifier(Protocol):
    """Checks a bearer token and returns its claims.

    Raises:
        UnauthenticatedError: the token is not accepted (the code says why).
        AdminAuthUnavailableError: the signing keys could not be read.
    """

    async def verify(self, token: str) -> Mapping[str, Any]: ...


def bearer_token(authorization: str | None) -> str:
    """The token of an ``Authorization: Bearer <token>`` header (RFC 6750, section 2.1).

    Raises:
        UnauthenticatedError: no header (``MissingToken``), another scheme or an empty or
            oversized token (``MalformedToken``).
    """
    if authorization is None or not authorization.strip():
        raise UnauthenticatedError("MissingToken", "send 'Authorization: Bearer <access token>'")
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise UnauthenticatedError(
            "MalformedToken", "the Authorization header must be 'Bearer <token>'"
        )
    if len(token) > MAX_TOKEN_CHARS or any(c.isspace() for c in token):
        raise UnauthenticatedError("MalformedToken", "the bearer token is not a JWT")
    return token


def caller_from_claims(claims: Mapping[str, Any]) -> Caller:
    """The caller a verified token names: ``oid``, ``tid``, a display name
    (``preferred_username``, ``upn``, or the client application's id ``azp``/``appid`` for an
    application token) and its ``roles``."""
    name = next(
        (str(claims[c]) for c in ("preferred_username", "upn", "azp", "appid") if claims.get(c)),
        "",
    )
    roles = claims.get("roles")
    granted = sorted({r for r in roles if isinstance(r, str)}) if isinstance(roles, list) else []
    return Caller(
        object_id=str(claims.get("oid", "")),
        tenant_id=str(claims.get("tid", "")),
        name=name,
        roles=tuple(granted),
        via=VIA_ADMIN_API,
    )


def require(caller: Caller, access: Access) -> Caller:
    """``caller`` if one of its roles grants ``access``.

    Raises:
        ForbiddenError: none does (``MissingRole``, naming the role needed).
    """
    if ROLES_GRANTING[access] & set(caller.roles):
        return caller
    needed = OPERATOR_ROLE if access is Access.OPERATE else f"{READER_ROLE} or {OPERATOR_ROLE}"
    raise ForbiddenError("MissingRole", f"this call needs the app role {needed}")


class AdminGate:
    """The admin API's check: token, then role. ``verifier`` ``None``: not configured."""

    def __init__(self, verifier: TokenVerifier | None, *, missing: str = "") -> None:
        self._verifier = verifier
        self._missing = missing

    @property
    def configured(self) -> bool:
        return self._verifier is not None

    async def authorize(self, authorization: str | None, access: Access) -> Caller:
        """The caller, if its token is valid and grants ``access``.

        Raises:
            AdminAuthUnavailableError: not configured (``AdminAuthNotConfigured``, 500), or
                the signing keys could not be read (503).
            UnauthenticatedError: no token, or one not accepted (401).
            ForbiddenError: a valid token without the role (403).
        """
        return require(await self.authenticate(authorization), access)

    async def authenticate(self, authorization: str | None) -> Caller:
        """The caller its token proves, whatever its roles (the route decides; a refused
        mutation is then audited with the caller it names).

        Raises:
            AdminAuthUnavailableError: not configured (500), or the keys unreadable (503).
            UnauthenticatedError: no token, or one not accepted (401).
        """
        if self._verifier is None:
            raise AdminAuthUnavailableError(
                "AdminAuthNotConfigured",
                f"the admin API refuses every call until {self._missing or 'its settings'} "
                "are set (docs/admin-auth.md)",
                status=500,
            )
        claims = await self._verifier.verify(bearer_token(authorization))
        return caller_from_claims(claims)
