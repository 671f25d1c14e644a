"""Builders for Key Vault and subscription events in both schemas."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from shared.crypto import VaultAllowList

SUB = "0f5a3c2e-1111-4222-8333-944455556666"
RG = "rg-keys"
VAULT = "contoso-kv"
KEY = "face-cmk"
V1 = "0123456789abcdef0123456789abcdef"
V2 = "fedcba9876543210fedcba9876543210"
EVENT_ID = "9f2c7d3e-5a4b-4c1d-8e7f-0a1b2c3d4e5f"


def vault_arm_id(vault: str = VAULT, sub: str = SUB, rg: str = RG) -> str:
    return f"/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.KeyVault/vaults/{vault}"


def key_event(
    event_type: str = "Microsoft.KeyVault.KeyNewVersionCreated",
    *,
    schema: str = "eventgrid",
    vault: str = VAULT,
    key: str = KEY,
    version: str | None = V2,
    nbf: Any = 1559081980,
    exp: Any = 1590704380,
) -> dict[str, Any]:
    key_id = f"https://{vault}.vault.azure.net/keys/{key}" + (f"/{version}" if version else "")
    data: dict[str, Any] = {
        "Id": key_id,
        "VaultName": vault,
        "ObjectType": "Key",
        "ObjectName": key,
        "Version": version,
        "NBF": nbf,
        "EXP": exp,
    }
    return envelope(event_type, vault_arm_id(vault), key, data, schema=schema)


def envelope(
    event_type: str, topic: str, subject: str, data: dict[str, Any], *, schema: str = "eventgrid"
) -> dict[str, Any]:
    if schema == "eventgrid":
        return {
            "id": EVENT_ID,
            "topic": topic,
            "subject": subject,
            "eventType": event_type,
            "eventTime": "2026-11-29T01:08:33.1036736Z",
            "data": data,
            "dataVersion": "1",
            "metadataVersion": "1",
        }
    return {
        "specversion": "1.0",
        "id": EVENT_ID,
        "source": topic,
        "subject": subject,
        "type": event_type,
        "time": "2026-11-29T01:08:33.1036736Z",
        "data": data,
    }


def resource_event(
    resource_uri: str,
    *,
    deleted: bool = False,
    schema: str = "eventgrid",
    topic: str = f"/subscriptions/{SUB}",
) -> dict[str, Any]:
    event_type = (
        "Microsoft.Resources.ResourceDeleteSuccess"
        if deleted
        else "Microsoft.Resources.ResourceWriteSuccess"
    )
    data = {
        "resourceUri": resource_uri,
        "operationName": "Microsoft.Authorization/roleAssignments/write",
        "status": "Succeeded",
        "subscriptionId": SUB,
        "claims": {"upn": "someone@contoso.example", "ipaddr": "203.0.113.7"},
        "httpRequest": {"clientIpAddress": "203.0.113.7", "method": "PUT"},
    }
    return envelope(event_type, topic, resource_uri, data, schema=schema)


@pytest.fixture
def allow_list() -> VaultAllowList:
    return VaultAllowList.parse(f"{VAULT},other-kv,emu=https://127.0.0.1:8443")


def mutated(event: dict[str, Any], path: tuple[str, ...], value: Any) -> dict[str, Any]:
    """A deep copy of ``event`` with ``path`` set to ``value`` (``...`` deletes it)."""
    out = copy.deepcopy(event)
    target = out
    for part in path[:-1]:
        target = target[part]
    if value is ...:
        target.pop(path[-1], None)
    else:
        target[path[-1]] = value
    return out
