"""Microsoft Entra ID, as far as keyward's admin API needs it: a tenant's signed access tokens.

The vault's own tokens (``credential.py``) stay unsigned: the emulated vault trusts whatever
names a principal. The admin API must not (it checks signatures against the tenant's
published keys, as it does in Azure), so this module gives the emulator what Entra ID
publishes (docs/emulator.md, "Entra ID access tokens", cites the shapes):

* ``GET /{tenant}/v2.0/.well-known/openid-configuration``: the tenant's OpenID Connect
  metadata: ``issuer`` ``{emulator}/{tenant}/v2.0`` and ``jwks_uri``;
* ``GET /{tenant}/discovery/v2.0/keys``: the signing keys (JWKS: ``kty``, ``use: sig``,
  ``kid``, ``x5t``, ``n``, ``e``, ``issuer``), one RSA-2048 key per emulator process;
* ``POST /control/entra/tokens``: mint a v2.0 access token (RS256) for keyward's admin API:
  ``{"roles", "oid"?, "tenant"?, "audience"?, "lifetime"?, "expired"?, "name"?, "kind"?:
  "user"|"app", "version"?: 2|1}``. Another tenant's token is signed by the same key but
  carries that tenant's ``tid`` and ``iss``, so only the tenant check can refuse it.

Token times are the wall clock's (keyward checks ``exp`` against its own clock), not the
emulated vault clock that tests move.
"""

from __future__ import annotations

import base64
import hashlib
import time
import uuid
from typing import TYPE_CHECKING, Any

import jwt
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import rsa

from devtools.emulator.state import DEFAULT_TENANT_ID
from shared.composition import OPERATOR_ROLE, READER_ROLE

if TYPE_CHECKING:
    from devtools.emulator.client import EmulatorClient
    from devtools.emulator.server import EmulatorServer

#: The client id of keyward's admin API app registration in the emulated tenant: the ``aud``
#: of its v2.0 tokens (``KEYWARD_ADMIN_AUDIENCE``).
ADMIN_APP_CLIENT_ID = "5e3c0d2a-7b1f-4c8e-9a6d-00000000ad17"
#: Its application ID URI (what ``az account get-access-token --resource`` names).
ADMIN_APP_ID_URI = "api://keyward-admin"
#: The client application that asks for tokens (the Azure CLI's well-known client id).
AZURE_CLI_CLIENT_ID = "04b07795-8ddb-461a-bbee-02f9e1bf7b46"
DEFAULT_LIFETIME_SECONDS = 3600


def _b64url_uint(value: int) -> str:
    raw = value.to_bytes((value.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


class EntraTenant:
    """One signing key and the documents a tenant's clients read."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url.rstrip("/")
        self._private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        public = self._private.public_key().public_numbers()
        self.kid = (
            base64.urlsafe_b64encode(hashlib.sha1(_b64url_uint(public.n).encode()).digest())  # noqa: S324 - a key id, like Entra's x5t thumbprint
            .rstrip(b"=")
            .decode()
        )
        self._n, self._e = _b64url_uint(public.n), _b64url_uint(public.e)

    def issuer(self, tenant: str, version: int = 2) -> str:
        if version == 1:
            return f"https://sts.windows.net/{tenant}/"
        return f"{self.base_url}/{tenant}/v2.0"

    def metadata(self, tenant: str) -> dict[str, Any]:
        """The v2.0 OpenID Connect metadata document (the fields keyward and clients read)."""
        return {
            "issuer": self.issuer(tenant),
            "jwks_uri": f"{self.base_url}/{tenant}/discovery/v2.0/keys",
            "authorization_endpoint": f"{self.base_url}/{tenant}/oauth2/v2.0/authorize",
            "token_endpoint": f"{self.base_url}/{tenant}/oauth2/v2.0/token",
            "id_token_signing_alg_values_supported": ["RS256"],
            "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
            "subject_types_supported": ["pairwise"],
            "tenant_region_scope": "EU",
        }

    def jwks(self) -> dict[str, Any]:
        return {
            "keys": [
                {
                    "kty": "RSA",
                    "use": "sig",
                    "kid": self.kid,
                    "x5t": self.kid,
                    "n": self._n,
                    "e": self._e,
                    "issuer": f"{self.base_url}/{{tenantid}}/v2.0",
                }
            ]
        }

    def mint(self, spec: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        """A signed access token as Entra ID issues it for an API (v2.0 by default)."""
        tenant = str(spec.get("tenant") or DEFAULT_TENANT_ID)
        version = int(spec.get("version") or 2)
        lifetime = int(spec.get("lifetime") or DEFAULT_LIFETIME_SECONDS)
        now = int(time.time())
        issued = now - lifetime - 600 if spec.get("expired") else now
        app = spec.get("kind") == "app"
        oid = str(spec.get("oid") or uuid.uuid4())
        claims: dict[str, Any] = {
            "aud": str(spec.get("audience") or ADMIN_APP_CLIENT_ID),
            "iss": self.issuer(tenant, version),
            "iat": issued,
            "nbf": issued + int(spec.get("not_before") or 0),
            "exp": issued + lifetime,
            "oid": oid,
            "sub": hashlib.sha256(f"{oid}:{tenant}".encode()).hexdigest()[:43],
            "tid": tenant,
            "uti": uuid.uuid4().hex[:22],
            "ver": "1.0" if version == 1 else "2.0",
        }
        client = str(spec.get("client_id") or (oid if app else AZURE_CLI_CLIENT_ID))
        claims["appid" if version == 1 else "azp"] = client
        claims["appidacr" if version == 1 else "azpacr"] = "1" if app else "0"
        roles = [str(role) for role in spec.get("roles") or ()]
        if roles:
            claims["roles"] = roles
        if app:
            claims["idtyp"] = "app"
        else:
            name = str(spec.get("name") or "admin@contoso.example")
            claims["name"] = name.split("@", maxsplit=1)[0]
            claims["upn" if version == 1 else "preferred_username"] = name
            claims["scp"] = "user_impersonation"
        headers = {"typ": "JWT", "kid": self.kid}
        if version == 1:
            headers["x5t"] = self.kid
        token = jwt.encode(claims, self._private, algorithm="RS256", headers=headers)
        return token, claims


def register_routes(app: web.Application, server: EmulatorServer) -> None:
    """Add the tenant's documents and the minting control route to the main application."""

    def tenant() -> EntraTenant:
        found = app.get(_TENANT)
        if found is None:  # the port is known once the server listens
            found = app[_TENANT] = EntraTenant(server.url)
        return found

    async def metadata(request: web.Request) -> web.Response:
        return web.json_response(tenant().metadata(request.match_info["tenant"]))

    async def keys(request: web.Request) -> web.Response:
        return web.json_response(tenant().jwks())

    async def mint(request: web.Request) -> web.Response:
        spec = await request.json()
        if not isinstance(spec, dict):
            raise web.HTTPBadRequest(text='{"error": {"message": "a JSON object"}}')
        token, claims = tenant().mint(spec)
        return web.json_response({"access_token": token, "token_type": "Bearer", "claims": claims})

    app.router.add_get("/{tenant}/v2.0/.well-known/openid-configuration", metadata)
    app.router.add_get("/{tenant}/discovery/v2.0/keys", keys)
    app.router.add_post("/control/entra/tokens", mint)


_TENANT: web.AppKey[EntraTenant] = web.AppKey("entra_tenant", EntraTenant)


def admin_settings(
    emulator_url: str, *, tenant: str = DEFAULT_TENANT_ID, audience: str = ADMIN_APP_CLIENT_ID
) -> dict[str, str]:
    """The app settings that make keyward's admin API trust this emulator's tenant."""
    return {
        "KEYWARD_ADMIN_TENANT_ID": tenant,
        "KEYWARD_ADMIN_AUDIENCE": audience,
        "KEYWARD_ADMIN_AUTHORITY": emulator_url,
    }


def admin_token(client: EmulatorClient, **spec: Any) -> str:
    """Mint an admin token (``spec``: roles, oid, tenant, audience, lifetime, expired, name,
    kind, version); see :meth:`EntraTenant.mint`."""
    return str(client.entra_token(spec)["access_token"])


def admin_headers(
    client: EmulatorClient, role: str | None = "operator", **spec: Any
) -> dict[str, str]:
    """``Authorization: Bearer`` headers of a token with ``role`` (``"reader"``,
    ``"operator"`` or ``None`` for no role) and any other claims in ``spec``."""
    roles = {"reader": [READER_ROLE], "operator": [OPERATOR_ROLE], None: []}[role]
    spec.setdefault("roles", roles)
    return {"Authorization": f"Bearer {admin_token(client, **spec)}"}
