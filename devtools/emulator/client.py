"""A small synchronous client for the emulator's control API (tests, demo, benchmarks).

Uses ``requests`` with ``verify=ca_path``: the emulator's own CA, never verification off.
"""

from __future__ import annotations

from typing import Any

import requests

JSON = dict[str, Any]


class EmulatorError(RuntimeError):
    """The control API refused a request."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status


class EmulatorClient:
    """Typed methods over ``/control/...``."""

    def __init__(self, base_url: str, ca_path: str, *, timeout: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.ca_path = str(ca_path)
        self.timeout = timeout
        self._session = requests.Session()

    def close(self) -> None:
        self._session.close()

    def _call(self, method: str, path: str, body: JSON | None = None) -> Any:
        response = self._session.request(
            method,
            f"{self.base_url}/control{path}",
            json=body,
            timeout=self.timeout,
            # Per request: requests lets REQUESTS_CA_BUNDLE override a session's verify.
            verify=self.ca_path,
        )
        if response.status_code >= 400:
            try:
                message = response.json()["error"]["message"]
            except (ValueError, KeyError, TypeError):
                message = response.text
            raise EmulatorError(response.status_code, message)
        if response.status_code == 204 or not response.content:
            return None
        return response.json()

    # vaults, principals, access
    def health(self) -> JSON:
        return dict(self._call("GET", "/health"))

    def create_vault(
        self,
        name: str,
        *,
        managed_hsm: bool = False,
        rbac: bool = False,
        soft_delete: bool = True,
        purge_protection: bool = True,
        soft_delete_retention_days: int = 90,
        **extra: Any,
    ) -> JSON:
        """Create a vault; the answer carries its ``url`` (https://127.0.0.1:PORT) and ``port``."""
        body = {
            "name": name,
            "managed_hsm": managed_hsm,
            "rbac": rbac,
            "soft_delete": soft_delete,
            "purge_protection": purge_protection,
            "soft_delete_retention_days": soft_delete_retention_days,
            **extra,
        }
        return dict(self._call("POST", "/vaults", body))

    def get_vault(self, name: str) -> JSON:
        return dict(self._call("GET", f"/vaults/{name}"))

    def list_vaults(self) -> list[JSON]:
        return list(self._call("GET", "/vaults"))

    def delete_vault(self, name: str) -> None:
        self._call("DELETE", f"/vaults/{name}")

    def create_principal(
        self, object_id: str | None = None, *, display_name: str = "", client_id: str | None = None
    ) -> JSON:
        body: JSON = {"display_name": display_name}
        if object_id:
            body["object_id"] = object_id
        if client_id:
            body["client_id"] = client_id
        return dict(self._call("POST", "/principals", body))

    def set_access_policy(self, vault: str, object_id: str, keys: list[str]) -> JSON:
        """Replace ``object_id``'s key permissions (``get``, ``wrapKey``, ...) on ``vault``."""
        return dict(
            self._call("PUT", f"/vaults/{vault}/access-policies/{object_id}", {"keys": keys})
        )

    def delete_access_policy(self, vault: str, object_id: str) -> JSON:
        return dict(self._call("DELETE", f"/vaults/{vault}/access-policies/{object_id}"))

    def create_role_assignment(
        self,
        principal_id: str,
        role: str,
        *,
        vault: str | None = None,
        key: str | None = None,
        scope: str | None = None,
        name: str | None = None,
    ) -> JSON:
        """Assign ``role`` (e.g. "Key Vault Crypto User" or its GUID) at vault or key scope."""
        body: JSON = {"principal_id": principal_id, "role": role}
        for field, value in (("vault", vault), ("key", key), ("scope", scope), ("name", name)):
            if value is not None:
                body[field] = value
        return dict(self._call("POST", "/role-assignments", body))

    def list_role_assignments(self) -> list[JSON]:
        return list(self._call("GET", "/role-assignments"))

    def delete_role_assignment(self, name: str) -> None:
        self._call("DELETE", f"/role-assignments/{name}")

    # keys
    def create_key(
        self,
        vault: str,
        name: str,
        *,
        kty: str | None = None,
        size: int | None = None,
        key_ops: list[str] | None = None,
        enabled: bool = True,
        nbf: float | None = None,
        exp: float | None = None,
        tags: dict[str, str] | None = None,
    ) -> JSON:
        """Seed a key version directly; returns the KeyBundle (public parts only)."""
        body: JSON = {"name": name, "enabled": enabled, "nbf": nbf, "exp": exp}
        if kty:
            body["kty"] = kty
        if size:
            body["size"] = size
        if key_ops is not None:
            body["key_ops"] = key_ops
        if tags:
            body["tags"] = tags
        return dict(self._call("POST", f"/vaults/{vault}/keys", body))

    def rotate_key(self, vault: str, name: str) -> JSON:
        return dict(self._call("POST", f"/vaults/{vault}/keys/{name}/rotate"))

    # clock
    def clock(self) -> JSON:
        return dict(self._call("GET", "/clock"))

    def advance_clock(self, seconds: float) -> JSON:
        """Move the emulated clock forward; due rotations and expiry events fire at once."""
        return dict(self._call("POST", "/clock", {"advance": seconds}))

    def set_clock(self, epoch_seconds: float) -> JSON:
        return dict(self._call("POST", "/clock", {"set": epoch_seconds}))

    def tick(self) -> JSON:
        return dict(self._call("POST", "/tick"))

    # throttle, latency, faults
    def set_throttle(
        self,
        vault: str,
        *,
        budget: float | None = None,
        window_seconds: float | None = None,
        enabled: bool | None = None,
    ) -> JSON:
        body = {"budget": budget, "window_seconds": window_seconds, "enabled": enabled}
        return dict(self._call("PUT", f"/vaults/{vault}/throttle", body))

    def get_throttle(self, vault: str) -> JSON:
        return dict(self._call("GET", f"/vaults/{vault}/throttle"))

    def set_deletion_lag(self, vault: str, seconds: float) -> JSON:
        """How long after ``DELETE /keys/{name}`` the key stays out of ``/deletedkeys``."""
        return dict(self._call("PUT", f"/vaults/{vault}/deletion", {"lag_seconds": seconds}))

    def set_faults(self, vault: str, **settings: Any) -> JSON:
        """Latency and faults: fixed_ms, jitter_ms, error_rate, error_status, drop_rate,
        redirect_to and next_link_origin (fault injection only; see docs/emulator.md),
        slow_rate, slow_ms, omit_retry_after_rate, ops (e.g. "unwrapkey"), seed."""
        return dict(self._call("PUT", f"/vaults/{vault}/faults", settings))

    def set_latency(self, vault: str, fixed_ms: float, jitter_ms: float = 0.0) -> JSON:
        return self.set_faults(vault, fixed_ms=fixed_ms, jitter_ms=jitter_ms)

    def get_faults(self, vault: str) -> JSON:
        return dict(self._call("GET", f"/vaults/{vault}/faults"))

    # counters and state
    def counters(self, vault: str) -> JSON:
        """``{"vault": {...}, "keys": {name: {..., "versions": {v: {...}}}}}``; each node has
        ``ops`` (by kind), ``status`` (2xx/4xx/5xx), ``throttled``, ``dropped``."""
        return dict(self._call("GET", f"/vaults/{vault}/counters"))

    def reset_counters(self, vault: str | None = None) -> None:
        if vault is None:
            self._call("POST", "/counters/reset")
        else:
            self._call("DELETE", f"/vaults/{vault}/counters")

    def dump_state(self) -> JSON:
        return dict(self._call("GET", "/state"))

    # Entra ID (devtools/emulator/entra.py)
    def entra_token(self, spec: JSON) -> JSON:
        """Mint a signed admin-API access token: ``{"access_token", "claims"}``."""
        return dict(self._call("POST", "/entra/tokens", spec))
