"""Who is calling, and may they: tokens, the 401 challenge, access policies and RBAC.

Tokens are unsigned JWTs (``alg: none``) minted by :mod:`devtools.emulator.credential`: the
emulator has no identity provider to trust, so the token simply *names* the principal (``oid``),
its tenant and the audience it was asked for. What the emulator does enforce is what the
service enforces after a token is accepted: the audience, the expiry, and then the vault's
permission model, evaluated against the live state on every request, so removing a policy
or a role assignment is seen by the very next call.

Refusals copy the service's wording (see ``docs/emulator.md``, "Refusals"): access policies
answer ``Forbidden`` / innererror ``AccessDenied``; RBAC answers ``Forbidden`` / innererror
``ForbiddenByRbac`` naming the missing data action.
"""

from __future__ import annotations

import base64
import binascii
import json
import time
from dataclasses import dataclass
from typing import Any

from devtools.emulator.state import (
    DEFAULT_TENANT_ID,
    ROLE_KEY_VAULT_ADMINISTRATOR,
    ROLE_KEY_VAULT_CRYPTO_OFFICER,
    ROLE_KEY_VAULT_CRYPTO_SERVICE_ENCRYPTION_USER,
    ROLE_KEY_VAULT_CRYPTO_USER,
    ROLE_KEY_VAULT_READER,
    EmulatorState,
    Principal,
    Vault,
)
from shared.settings import PUBLIC_ARM_ENDPOINT

VAULT_RESOURCE = "https://vault.azure.net"
MANAGED_HSM_RESOURCE = "https://managedhsm.azure.net"
ARM_RESOURCE = PUBLIC_ARM_ENDPOINT
LOGIN_AUTHORITY = "https://login.microsoftonline.com"

#: Built-in role -> data actions (Azure's published role definitions, data actions only).
ROLE_DATA_ACTIONS: dict[str, tuple[str, ...]] = {
    ROLE_KEY_VAULT_ADMINISTRATOR: ("Microsoft.KeyVault/vaults/*",),
    ROLE_KEY_VAULT_CRYPTO_OFFICER: (
        "Microsoft.KeyVault/vaults/keys/*",
        "Microsoft.KeyVault/vaults/keyrotationpolicies/*",
    ),
    ROLE_KEY_VAULT_CRYPTO_USER: (
        "Microsoft.KeyVault/vaults/keys/read",
        "Microsoft.KeyVault/vaults/keys/update/action",
        "Microsoft.KeyVault/vaults/keys/backup/action",
        "Microsoft.KeyVault/vaults/keys/encrypt/action",
        "Microsoft.KeyVault/vaults/keys/decrypt/action",
        "Microsoft.KeyVault/vaults/keys/wrap/action",
        "Microsoft.KeyVault/vaults/keys/unwrap/action",
        "Microsoft.KeyVault/vaults/keys/sign/action",
        "Microsoft.KeyVault/vaults/keys/verify/action",
    ),
    ROLE_KEY_VAULT_CRYPTO_SERVICE_ENCRYPTION_USER: (
        "Microsoft.KeyVault/vaults/keys/read",
        "Microsoft.KeyVault/vaults/keys/wrap/action",
        "Microsoft.KeyVault/vaults/keys/unwrap/action",
    ),
    ROLE_KEY_VAULT_READER: (
        "Microsoft.KeyVault/vaults/*/read",
        "Microsoft.KeyVault/vaults/secrets/readMetadata/action",
    ),
}

#: Friendly names accepted by the control API for the role GUIDs above.
ROLE_NAMES: dict[str, str] = {
    "Key Vault Administrator": ROLE_KEY_VAULT_ADMINISTRATOR,
    "Key Vault Crypto Officer": ROLE_KEY_VAULT_CRYPTO_OFFICER,
    "Key Vault Crypto User": ROLE_KEY_VAULT_CRYPTO_USER,
    "Key Vault Crypto Service Encryption User": ROLE_KEY_VAULT_CRYPTO_SERVICE_ENCRYPTION_USER,
    "Key Vault Reader": ROLE_KEY_VAULT_READER,
}


#: Every key permission an access policy can grant (the admin principal gets all of them).
ALL_KEY_PERMISSIONS = [
    "get", "list", "update", "create", "import", "delete", "recover", "backup", "restore",
    "decrypt", "encrypt", "unwrapKey", "wrapKey", "verify", "sign", "purge", "release",
    "rotate", "getrotationpolicy", "setrotationpolicy",
]  # fmt: skip


@dataclass(frozen=True)
class Operation:
    """One data-plane operation: its access-policy permission and its RBAC data action."""

    kind: str
    permission: str
    data_action: str


def _op(kind: str, permission: str, action: str) -> Operation:
    return Operation(kind, permission, f"Microsoft.KeyVault/vaults/{action}")


OPERATIONS: dict[str, Operation] = {
    op.kind: op
    for op in (
        _op("get", "get", "keys/read"),
        _op("list", "list", "keys/read"),
        _op("listversions", "list", "keys/read"),
        _op("create", "create", "keys/create/action"),
        _op("import", "import", "keys/import/action"),
        _op("update", "update", "keys/update/action"),
        _op("delete", "delete", "keys/delete"),
        _op("rotate", "rotate", "keys/rotate/action"),
        _op("getrotationpolicy", "getrotationpolicy", "keyrotationpolicies/read"),
        _op("setrotationpolicy", "setrotationpolicy", "keyrotationpolicies/write"),
        _op("getdeleted", "get", "keys/read"),
        _op("listdeleted", "list", "keys/read"),
        _op("recover", "recover", "keys/recover/action"),
        _op("purge", "purge", "keys/purge/action"),
        _op("encrypt", "encrypt", "keys/encrypt/action"),
        _op("decrypt", "decrypt", "keys/decrypt/action"),
        _op("wrapKey", "wrapKey", "keys/wrap/action"),
        _op("unwrapKey", "unwrapKey", "keys/unwrap/action"),
        _op("sign", "sign", "keys/sign/action"),
        _op("verify", "verify", "keys/verify/action"),
    )
}


class Denied(Exception):
    """A refusal the handler turns into the service's error JSON."""

    def __init__(self, status: int, code: str, message: str, inner: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.inner = inner


# --- tokens -----------------------------------------------------------------------------------


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def mint_token(
    object_id: str,
    audience: str,
    *,
    tenant_id: str = DEFAULT_TENANT_ID,
    lifetime_seconds: int = 3600,
    now: float | None = None,
) -> tuple[str, int]:
    """An unsigned JWT naming ``object_id`` for ``audience``; returns (token, expires_on)."""
    issued = int(now if now is not None else time.time())
    expires = issued + lifetime_seconds
    header = {"alg": "none", "typ": "JWT"}
    claims = {
        "aud": audience,
        "iss": f"https://sts.windows.net/{tenant_id}/",
        "iat": issued,
        "nbf": issued,
        "exp": expires,
        "oid": object_id,
        "sub": object_id,
        "tid": tenant_id,
    }
    token = (
        _b64url(json.dumps(header, separators=(",", ":")).encode())
        + "."
        + _b64url(json.dumps(claims, separators=(",", ":")).encode())
        + "."
    )
    return token, expires


def audience_for_scope(scope: str) -> str:
    """``https://vault.azure.net/.default`` -> ``https://vault.azure.net``."""
    return scope.removesuffix("/.default").rstrip("/")


@dataclass(frozen=True)
class Caller:
    """The authenticated caller of one request."""

    object_id: str
    tenant_id: str
    audience: str
    app_id: str

    def describe(self) -> str:
        """The ``appid=...;oid=...;iss=...`` form the service puts in 403 messages."""
        return f"appid={self.app_id};oid={self.object_id};iss=https://sts.windows.net/{self.tenant_id}/"


_TOKEN_CACHE: dict[str, tuple[dict[str, Any], float]] = {}
_TOKEN_CACHE_LIMIT = 4096


def _claims(token: str) -> dict[str, Any] | None:
    cached = _TOKEN_CACHE.get(token)
    if cached is not None:
        return cached[0]
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        claims = json.loads(_b64url_decode(parts[1]))
    except (ValueError, binascii.Error):
        return None
    if not isinstance(claims, dict) or "oid" not in claims or "aud" not in claims:
        return None
    if len(_TOKEN_CACHE) >= _TOKEN_CACHE_LIMIT:
        _TOKEN_CACHE.clear()
    _TOKEN_CACHE[token] = (claims, float(claims.get("exp", 0)))
    return claims


def authenticate(
    authorization: str | None, state: EmulatorState, audiences: tuple[str, ...]
) -> Caller | None:
    """The caller named by an ``Authorization: Bearer`` header, or None when it is missing,
    malformed, expired (real time: the token's clock is the client's) or for another audience.
    """
    if not authorization or not authorization.startswith("Bearer "):
        return None
    claims = _claims(authorization[len("Bearer ") :].strip())
    if claims is None:
        return None
    if float(claims.get("exp", 0)) <= time.time():
        return None
    audience = str(claims["aud"]).rstrip("/")
    if audience not in audiences:
        return None
    object_id = str(claims["oid"])
    principal: Principal | None = state.principals.get(object_id)
    return Caller(
        object_id=object_id,
        tenant_id=str(claims.get("tid", DEFAULT_TENANT_ID)),
        audience=audience,
        app_id=principal.client_id if principal else object_id,
    )


def vault_resource(vault: Vault) -> str:
    return MANAGED_HSM_RESOURCE if vault.managed_hsm else VAULT_RESOURCE


def challenge_header(vault: Vault) -> str:
    """The ``WWW-Authenticate`` value Key Vault sends with a 401 (what the SDK parses)."""
    return (
        f'Bearer authorization="{LOGIN_AUTHORITY}/{vault.tenant_id}", '
        f'resource="{vault_resource(vault)}"'
    )


# --- authorization ----------------------------------------------------------------------------


def _action_matches(pattern: str, action: str) -> bool:
    """Azure's wildcard semantics: ``*`` matches any run of characters (including ``/``)."""
    pattern = pattern.lower()
    action = action.lower()
    if "*" not in pattern:
        return pattern == action
    head, _, tail = pattern.partition("*")
    if not action.startswith(head):
        return False
    rest = action[len(head) :]
    if "*" in tail:
        return any(_action_matches(tail, rest[i:]) for i in range(len(rest) + 1))
    return rest.endswith(tail)


def rbac_allows(
    state: EmulatorState, vault: Vault, principal_id: str, action: str, key_name: str | None
) -> bool:
    """Whether a role assignment at the vault, the key, or any scope above them (management
    groups included, ``state.access``) grants ``action`` through a built-in or custom role,
    and no deny assignment takes it away. An assignment with an ABAC condition grants
    nothing here (the emulator evaluates no condition), nor does one to a group (it has no
    directory); see docs/emulator.md, "RBAC beyond direct grants"."""
    resource = vault.arm_id + (f"/keys/{key_name}" if key_name else "")
    if _denied(state, principal_id, action, resource):
        return False
    for assignment in state.role_assignments.values():
        if assignment.principal_id != principal_id or assignment.condition:
            continue
        if not state.access.covers(assignment.scope, resource):
            continue
        role = assignment.role_definition_id.rsplit("/", 1)[-1].lower()
        custom = state.access.custom_roles.get(role)
        allowed = ROLE_DATA_ACTIONS.get(role) or (tuple(custom.data_actions) if custom else ())
        refused = tuple(custom.not_data_actions) if custom else ()
        if any(_action_matches(p, action) for p in allowed) and not any(
            _action_matches(p, action) for p in refused
        ):
            return True
    return False


_EVERYONE = "00000000-0000-0000-0000-000000000000"


def _denied(state: EmulatorState, principal_id: str, action: str, resource: str) -> bool:
    """A deny assignment covering ``resource`` that names the principal (or Everyone) and
    does not exclude it, and blocks ``action``."""
    for deny in state.access.deny_assignments.values():
        at_own = deny.scope.rstrip("/").lower() == resource.rstrip("/").lower()
        if not state.access.covers(deny.scope, resource) or (
            deny.do_not_apply_to_child_scopes and not at_own
        ):
            continue
        names = {p.get("id", "").lower() for p in deny.principals}
        excluded = {p.get("id", "").lower() for p in deny.exclude_principals}
        if principal_id.lower() in excluded or not names & {principal_id.lower(), _EVERYONE}:
            continue
        if any(_action_matches(p, action) for p in deny.data_actions) and not any(
            _action_matches(p, action) for p in deny.not_data_actions
        ):
            return True
    return False


def policy_allows(vault: Vault, principal_id: str, permission: str) -> bool:
    """Whether an access policy for ``principal_id`` lists ``permission`` (case-insensitive)."""
    wanted = permission.lower()
    for policy in vault.access_policies:
        if policy.object_id == principal_id and any(
            p.lower() in (wanted, "all") for p in policy.keys
        ):
            return True
    return False


def authorize(
    state: EmulatorState, vault: Vault, caller: Caller, operation: Operation, key_name: str | None
) -> None:
    """Raise :class:`Denied` (403) unless the vault's permission model allows the operation."""
    vault_ref = f"{vault.name};location={vault.location}"
    if vault.enable_rbac_authorization:
        if rbac_allows(state, vault, caller.object_id, operation.data_action, key_name):
            return
        resource = vault.arm_id + (f"/keys/{key_name}" if key_name else "")
        raise Denied(
            403,
            "Forbidden",
            "Caller is not authorized to perform action on resource.\r\n"
            "If role assignments, deny assignments or role definitions were changed recently, "
            "please observe propagation time.\r\n"
            f"Caller: {caller.describe()}\r\n"
            f"Action: '{operation.data_action}'\r\n"
            f"Resource: '{resource.lower()}'\r\n"
            "Assignment: (not found)\r\n"
            "DenyAssignmentId: null\r\n"
            "DecisionReason: null \r\n"
            f"Vault: {vault_ref}\r\n",
            "ForbiddenByRbac",
        )
    if policy_allows(vault, caller.object_id, operation.permission):
        return
    raise Denied(
        403,
        "Forbidden",
        f"The user, group or application '{caller.describe()}' does not have keys "
        f"{operation.permission} permission on key vault '{vault_ref}'. For help resolving "
        "this issue, please see https://go.microsoft.com/fwlink/?linkid=2125287",
        "AccessDenied",
    )
