"""Who asked for a mutating admin action: the identity keyward records beside it.

The admin API builds a :class:`Caller` from a validated Microsoft Entra ID access token
(never from a header a caller can set); the operator CLI builds one from the operator's own
Azure credential. Both record it with the action, in keyward's state and in telemetry. A
caller carries identifiers and role names only, never a token.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

#: How the call reached keyward.
VIA_ADMIN_API = "admin-api"
VIA_CLI = "cli"


@dataclass(frozen=True)
class Caller:
    """One caller.

    Attributes:
        object_id: the Entra ID object id (``oid``) of the user, group-less service
            principal or managed identity that called.
        tenant_id: its tenant (``tid``).
        name: a display name when the token has one (``preferred_username``, ``upn`` or
            ``appid``), else "".
        roles: the app roles the token granted (``roles``), sorted.
        via: :data:`VIA_ADMIN_API` or :data:`VIA_CLI`.
    """

    object_id: str
    tenant_id: str
    name: str = ""
    roles: tuple[str, ...] = ()
    via: str = VIA_ADMIN_API

    def to_dict(self) -> dict[str, Any]:
        """The record form (state rows, operation records, telemetry attributes)."""
        return {
            "object_id": self.object_id,
            "tenant_id": self.tenant_id,
            "name": self.name,
            "roles": list(self.roles),
            "via": self.via,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Caller:
        """Raises: KeyError, TypeError: not a record written by :meth:`to_dict`."""
        return cls(
            object_id=str(data["object_id"]),
            tenant_id=str(data["tenant_id"]),
            name=str(data.get("name", "")),
            roles=tuple(str(role) for role in data.get("roles", ())),
            via=str(data.get("via", VIA_ADMIN_API)),
        )
