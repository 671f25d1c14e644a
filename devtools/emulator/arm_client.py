"""Synchronous helpers for tests and the demo: the ARM control routes, SDK client kwargs.

Built on ``urllib`` so it needs nothing beyond the standard library, and verifies TLS against
the emulator's CA like every other client here. Example::

    control = ArmControl(emulator_url, ca_path)
    account = control.seed_account(
        "face1",
        identity="SystemAssigned",
        encryption=cmk_encryption(vault_url, "rotating", version),
    )
    client = CognitiveServicesManagementClient(
        credential, SUBSCRIPTION, **management_client_kwargs(emulator_url, ca_path)
    )
"""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from shared.settings import PUBLIC_ARM_ENDPOINT

#: The scope the management SDKs ask tokens for (the emulator checks the audience).
ARM_SCOPE = f"{PUBLIC_ARM_ENDPOINT}/.default"


def management_client_kwargs(base_url: str, ca_path: str | Path) -> dict[str, Any]:
    """Keyword arguments that point azure-mgmt-* clients at the emulator.

    ``base_url`` replaces management.azure.com, ``connection_verify`` trusts the emulator's
    CA, ``credential_scopes`` keeps the real ARM audience. ``polling_interval`` only matters
    when the emulator is told not to send ``Retry-After`` (see ``ArmControl.set_lro``).
    """
    return {
        "base_url": base_url.rstrip("/"),
        "connection_verify": str(ca_path),
        "credential_scopes": [ARM_SCOPE],
        "polling_interval": 0.05,
    }


class ControlError(RuntimeError):
    """A control route answered with an error status."""

    def __init__(self, status: int, body: Any) -> None:
        super().__init__(f"control call failed with {status}: {body}")
        self.status = status
        self.body = body


class ControlSession:
    """JSON over HTTPS to the emulator's main port, verifying its CA."""

    def __init__(self, base_url: str, ca_path: str | Path, *, timeout: float = 60.0) -> None:
        self.base_url = base_url.rstrip("/")
        self._context = ssl.create_default_context(cafile=str(ca_path))
        self._timeout = timeout

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        """Send ``body`` as JSON; return the decoded answer (None for an empty one).

        Raises:
            ControlError: the route answered 4xx/5xx.
        """
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(  # noqa: S310 - https to the emulator only
            self.base_url + path, data=data, method=method
        )
        if data is not None:
            request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(  # noqa: S310
                request, context=self._context, timeout=self._timeout
            ) as response:
                raw = response.read()
        except urllib.error.HTTPError as error:
            raw = error.read()
            try:
                detail: Any = json.loads(raw)
            except ValueError:
                detail = raw.decode(errors="replace")
            raise ControlError(error.code, detail) from error
        return json.loads(raw) if raw else None


def cmk_encryption(
    vault_uri: str, key_name: str, key_version: str, identity_client_id: str | None = None
) -> dict[str, Any]:
    """``properties.encryption`` for a customer-managed key in Key Vault."""
    properties: dict[str, Any] = {
        "keyName": key_name,
        "keyVersion": key_version,
        "keyVaultUri": vault_uri,
    }
    if identity_client_id is not None:
        properties["identityClientId"] = identity_client_id
    return {"keySource": "Microsoft.KeyVault", "keyVaultProperties": properties}


class ArmControl:
    """Seeding and knobs of the emulator's ARM surface."""

    def __init__(self, base_url: str, ca_path: str | Path) -> None:
        self.session = ControlSession(base_url, ca_path)

    def seed_account(
        self,
        name: str,
        *,
        kind: str = "Face",
        sku: str = "S0",
        resource_group: str | None = None,
        location: str | None = None,
        identity: str | dict[str, Any] | None = None,
        encryption: dict[str, Any] | None = None,
        tags: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """Create (or overwrite) a Cognitive Services account without events or LROs.

        ``identity`` may be ``"SystemAssigned"`` (a principal is made and registered so role
        assignments and access policies can name it) or a full ARM ``identity`` object.
        Returns the account as ARM's GET returns it.
        """
        body: dict[str, Any] = {"kind": kind, "sku": {"name": sku}}
        if resource_group is not None:
            body["resourceGroup"] = resource_group
        if location is not None:
            body["location"] = location
        if identity is not None:
            body["identity"] = {"type": identity} if isinstance(identity, str) else identity
        if encryption is not None:
            body["properties"] = {"encryption": encryption}
        if tags is not None:
            body["tags"] = tags
        result: dict[str, Any] = self.session.call("PUT", f"/control/arm/accounts/{name}", body)
        return result

    def accounts(self) -> list[dict[str, Any]]:
        result: dict[str, Any] = self.session.call("GET", "/control/arm/accounts")
        return list(result["value"])

    def set_next_link_origin(self, origin: str | None) -> dict[str, Any]:
        """Fault injection (ARM never does this): account listings name a ``nextLink`` on
        ``origin``; ``None`` turns it off."""
        result: dict[str, Any] = self.session.call(
            "PUT", "/control/arm/settings", {"nextLinkOrigin": origin}
        )
        return result

    def set_lro(
        self, *, seconds: float | None = None, retry_after: str | bool | None = False
    ) -> dict[str, Any]:
        """How long Cognitive Services operations run and the ``Retry-After`` they send.

        ``retry_after=None`` sends no header (the SDK then uses its ``polling_interval``);
        a string (``"1"``, ``"0.05"``) is sent as is; ``False`` leaves it unchanged.
        """
        body: dict[str, Any] = {}
        if seconds is not None:
            body["operationSeconds"] = seconds
        if retry_after is not False:
            body["retryAfter"] = retry_after
        result: dict[str, Any] = self.session.call("PUT", "/control/arm/settings", body)
        return result
