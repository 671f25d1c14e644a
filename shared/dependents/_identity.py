"""Which managed identity a resource uses for its key, from the resource's ARM JSON. Pure.

An account may use its system-assigned identity or a user-assigned one; the latter is named
by ``encryption.keyVaultProperties.identityClientId`` (a *client* id) while role
assignments and access policies name *object* (principal) ids, so the client id is mapped
through the resource's ``identity.userAssignedIdentities`` (``{resourceId: {principalId,
clientId}}``). Every inventory (per-subscription listing, Resource Graph) maps identities
through :func:`identity_from_arm`, and the verdict judges the identity it names
(:func:`identity_findings`): a client id keyward cannot map is UNKNOWN, never ACCESS_LOST.
"""

from __future__ import annotations

from collections.abc import Mapping

from shared.dependents._models import AccountIdentity
from shared.dependents._reasons import Finding, Reason


def identity_from_arm(
    identity: Mapping[str, object] | None,
    key_vault_properties: Mapping[str, object] | None,
    *,
    user_assigned_resource_id: str | None = None,
) -> AccountIdentity:
    """The identity an ARM resource uses for its key.

    Args:
        identity: the resource's ``identity`` object (``type``, ``principalId``,
            ``userAssignedIdentities``); casing of keys as ARM returns them.
        key_vault_properties: ``encryption.keyVaultProperties`` (Azure AI services), for
            ``identityClientId``.
        user_assigned_resource_id: Storage names the identity by resource id instead
            (``encryption.identity.userAssignedIdentity``); it is mapped to that identity's
            client id, or kept as the client id when unresolved (then judged UNKNOWN).
    """
    ident = identity if isinstance(identity, Mapping) else {}
    kv = key_vault_properties if isinstance(key_vault_properties, Mapping) else {}
    client_id = _text(kv.get("identityClientId"))
    pairs: list[tuple[str, str | None]] = []
    by_resource: dict[str, str] = {}
    raw = ident.get("userAssignedIdentities")
    for resource_id, value in (raw if isinstance(raw, Mapping) else {}).items():
        entry = value if isinstance(value, Mapping) else {}
        client = _text(entry.get("clientId"))
        if client:
            pairs.append((client.lower(), _text(entry.get("principalId"))))
            by_resource[str(resource_id).lower()] = client
    named = _text(user_assigned_resource_id)
    if not client_id and named:
        client_id = by_resource.get(named.lower(), named)
    resolved = None
    if client_id:
        resolved = next((p for c, p in pairs if c == client_id.lower()), None)
    return AccountIdentity(
        principal_id=_text(ident.get("principalId")),
        client_id=client_id,
        user_assigned_principal_id=resolved,
        type=_text(ident.get("type")),
        user_assigned=tuple(pairs),
    )


def identity_findings(identity: AccountIdentity) -> list[Finding]:
    """Why the identity used for the key is missing (LOST) or cannot be told (UNKNOWN)."""
    if identity.client_id:
        if identity.user_assigned_principal_id:
            return []
        known = {c for c, _ in identity.user_assigned}
        if identity.user_assigned and identity.client_id.lower() not in known:
            detail = (
                f"identityClientId {identity.client_id} is not among the account's "
                "user-assigned identities"
            )
        else:
            detail = f"the principal id of user-assigned identity {identity.client_id} is unknown"
        return [Finding(Reason.USER_ASSIGNED_IDENTITY_UNRESOLVED, detail)]
    if identity.principal_id:
        return []
    if identity.user_assigned:
        return [
            Finding(
                Reason.IDENTITY_CLIENT_ID_MISSING,
                "the account has only user-assigned identities and names none for its key",
            )
        ]
    return [Finding(Reason.IDENTITY_MISSING, "the account has no managed identity")]


def _text(value: object) -> str | None:
    return value.strip() or None if isinstance(value, str) else None
