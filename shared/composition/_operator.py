"""The operator behind a CLI command in deployment mode: a :class:`Caller` from their credential.

The CLI reaches the deployment's state with the operator's own Azure credential (what
``DefaultAzureCredential`` finds: ``az login``, the environment, a managed identity). A
mutating command records who asked, so the CLI asks that credential for a token for ARM (the
audience every Azure principal can get a token for) and reads its ``oid``, ``tid`` and name
claims. The token is not verified: it is the operator's own, fetched here from their
credential, and it only names them; nothing is authorized by it. It is never printed, stored
or logged, and does not outlive this call.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from azure.core.credentials_async import AsyncTokenCredential

from shared.adapters._azure_errors import translated
from shared.adapters.arm import management_kwargs
from shared.errors import ConfigurationError
from shared.services._caller import VIA_CLI, Caller

#: Claims that may carry a readable name, in the order preferred.
_NAME_CLAIMS = ("preferred_username", "upn", "unique_name", "name", "appid", "azp")


async def operator_caller(credential: AsyncTokenCredential, arm_endpoint: str) -> Caller:
    """The operator as a :class:`Caller` (``via`` :data:`VIA_CLI`), from a token for the
    ARM audience of ``arm_endpoint`` (the public cloud's or a sovereign one's).

    Raises:
        AccessDeniedError: the credential could not get a token (not signed in).
        ConfigurationError: the token names no object id or tenant.
    """
    scope = management_kwargs(arm_endpoint, None)["credential_scopes"][0]
    with translated("get a token for the operator"):
        token = await credential.get_token(scope)
    return caller_from_claims(unverified_claims(token.token))


def unverified_claims(token: str) -> dict[str, Any]:
    """The claims of a JWT, read without checking its signature (see the module docstring).

    Raises:
        ConfigurationError: not a JWT (the message never holds the token).
    """
    parts = token.split(".")
    if len(parts) != 3:
        raise ConfigurationError("the operator's credential gave a token that is not a JWT")
    payload = parts[1]
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (ValueError, binascii.Error):
        raise ConfigurationError("the operator's token has unreadable claims") from None
    if not isinstance(claims, dict):
        raise ConfigurationError("the operator's token has unreadable claims")
    return claims


def caller_from_claims(claims: dict[str, Any]) -> Caller:
    """``oid``, ``tid``, the first name-like claim and ``roles``, as a CLI caller.

    Raises:
        ConfigurationError: ``oid`` or ``tid`` is missing.
    """
    object_id, tenant_id = claims.get("oid"), claims.get("tid")
    if not isinstance(object_id, str) or not object_id or not isinstance(tenant_id, str):
        raise ConfigurationError("the operator's token names no object id (oid) or tenant")
    name = next((str(claims[c]) for c in _NAME_CLAIMS if isinstance(claims.get(c), str)), "")
    roles = claims.get("roles")
    listed = tuple(sorted(str(r) for r in roles)) if isinstance(roles, list) else ()
    return Caller(object_id, tenant_id, name, listed, VIA_CLI)
