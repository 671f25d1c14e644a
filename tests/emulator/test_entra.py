"""The emulator as an Entra ID tenant: its OpenID metadata and keys over HTTPS in Entra's
shapes, and the tokens it mints verified by keyward's own verifier against them (the real
HTTP path: aiohttp, the emulator's CA)."""

from __future__ import annotations

import asyncio

import jwt
import pytest
import requests

from devtools.emulator.entra import ADMIN_APP_CLIENT_ID, admin_settings, admin_token
from devtools.emulator.pytest_plugin import RunningEmulator
from devtools.emulator.state import DEFAULT_TENANT_ID
from shared.adapters.entra_tokens import EntraTokenVerifier, metadata_url
from shared.errors import UnauthenticatedError

pytestmark = pytest.mark.emulator


def test_metadata_and_keys_have_entras_shapes(emulator: RunningEmulator) -> None:
    metadata = requests.get(
        metadata_url(emulator.url, DEFAULT_TENANT_ID), verify=emulator.ca_path, timeout=10
    ).json()
    assert metadata["issuer"] == f"{emulator.url}/{DEFAULT_TENANT_ID}/v2.0"
    assert metadata["jwks_uri"] == f"{emulator.url}/{DEFAULT_TENANT_ID}/discovery/v2.0/keys"
    assert metadata["id_token_signing_alg_values_supported"] == ["RS256"]
    (key,) = requests.get(metadata["jwks_uri"], verify=emulator.ca_path, timeout=10).json()["keys"]
    assert (key["kty"], key["use"], key["e"]) == ("RSA", "sig", "AQAB")
    assert key["kid"] == key["x5t"]
    assert not {"d", "p", "q", "dp", "dq", "qi"} & set(key)  # public parts only

    raw = admin_token(emulator.client, roles=["Keyward.Reader"], name="ada@contoso.example")
    header = jwt.get_unverified_header(raw)
    assert (header["alg"], header["kid"]) == ("RS256", key["kid"])
    claims = jwt.decode(raw, options={"verify_signature": False})
    assert claims["ver"] == "2.0"
    assert claims["aud"] == ADMIN_APP_CLIENT_ID
    assert claims["tid"] == DEFAULT_TENANT_ID
    assert claims["preferred_username"] == "ada@contoso.example"
    assert claims["roles"] == ["Keyward.Reader"]
    app = jwt.decode(admin_token(emulator.client, kind="app", roles=[]),
                     options={"verify_signature": False})  # fmt: skip
    assert app["idtyp"] == "app"
    assert not {"roles", "preferred_username", "scp"} & set(app)


async def test_keywards_verifier_accepts_its_tokens_and_refuses_another_tenants(
    emulator: RunningEmulator,
) -> None:
    settings = admin_settings(emulator.url)
    verifier = EntraTokenVerifier(
        tenant_id=settings["KEYWARD_ADMIN_TENANT_ID"],
        audiences=[settings["KEYWARD_ADMIN_AUDIENCE"]],
        authority=settings["KEYWARD_ADMIN_AUTHORITY"],
        ca_bundle=emulator.ca_path,
    )
    try:
        good = await asyncio.to_thread(admin_token, emulator.client, roles=["Keyward.Operator"])
        assert (await verifier.verify(good))["roles"] == ["Keyward.Operator"]
        other = await asyncio.to_thread(
            admin_token, emulator.client, tenant="0b1e2c3d-4e5f-4a6b-8c7d-0000000000ff"
        )
        with pytest.raises(UnauthenticatedError) as caught:
            await verifier.verify(other)  # the same key signed it: only the tenant differs
        assert caught.value.code == "WrongTenant"
    finally:
        await verifier.close()
