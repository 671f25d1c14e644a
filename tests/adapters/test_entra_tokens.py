"""The admin API's token verifier on its own: a tenant's keys served by an injected fetcher
(the documents Entra ID publishes, in their shape), tokens signed with them or not.

Each refusal names its reason (a code) and never the token; the key cache fetches again
only for an unknown key id, and not more often than its floor."""

from __future__ import annotations

import base64
import time
import uuid
from collections.abc import Mapping
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from shared.adapters.entra_tokens import (
    MIN_REFRESH_SECONDS,
    EntraTokenVerifier,
    metadata_url,
    v2_issuer,
)
from shared.errors import AdminAuthUnavailableError, UnauthenticatedError

AUTHORITY = "https://login.microsoftonline.com"
TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
OTHER_TENANT = "11111111-2222-3333-4444-555555555555"
AUDIENCE = "5e3c0d2a-7b1f-4c8e-9a6d-00000000ad17"
KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
STRANGER = rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _jwk(private: rsa.RSAPrivateKey, kid: str) -> dict[str, Any]:
    numbers = private.public_key().public_numbers()

    def b64(value: int) -> str:
        raw = value.to_bytes((value.bit_length() + 7) // 8, "big")
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    return {"kty": "RSA", "use": "sig", "kid": kid, "x5t": kid, "n": b64(numbers.n),
            "e": b64(numbers.e), "issuer": f"{AUTHORITY}/{{tenantid}}/v2.0"}  # fmt: skip


class Tenant:
    """What ``login.microsoftonline.com`` serves for one tenant, counting fetches."""

    def __init__(self) -> None:
        self.keys = [_jwk(KEY, "k1")]
        self.fetches: list[str] = []
        self.clock = 1000.0

    async def fetch(self, url: str) -> Mapping[str, Any]:
        self.fetches.append(url)
        if url == metadata_url(AUTHORITY, TENANT):
            return {"issuer": v2_issuer(AUTHORITY, TENANT),
                    "jwks_uri": f"{AUTHORITY}/{TENANT}/discovery/v2.0/keys"}  # fmt: skip
        if url == f"{AUTHORITY}/{TENANT}/discovery/v2.0/keys":
            return {"keys": self.keys}
        raise ValueError(f"HTTP 404 {url}")

    def verifier(self) -> EntraTokenVerifier:
        return EntraTokenVerifier(
            tenant_id=TENANT, audiences=[AUDIENCE], authority=AUTHORITY, fetch=self.fetch,
            clock=lambda: self.clock,
        )  # fmt: skip


def token(
    *,
    key: Any = KEY,
    kid: str = "k1",
    algorithm: str = "RS256",
    tenant: str = TENANT,
    issuer: str | None = None,
    audience: str = AUDIENCE,
    lifetime: int = 3600,
    issued: int | None = None,
    drop: tuple[str, ...] = (),
) -> str:
    now = int(time.time()) if issued is None else issued
    claims = {"aud": audience, "iss": issuer or v2_issuer(AUTHORITY, tenant), "iat": now,
              "nbf": now, "exp": now + lifetime, "oid": str(uuid.uuid4()), "tid": tenant,
              "roles": ["Keyward.Operator"], "ver": "2.0", "azp": str(uuid.uuid4())}  # fmt: skip
    for name in drop:
        claims.pop(name)
    return jwt.encode(claims, key, algorithm=algorithm, headers={"kid": kid})


async def _refused(verifier: EntraTokenVerifier, raw: str) -> UnauthenticatedError:
    with pytest.raises(UnauthenticatedError) as caught:
        await verifier.verify(raw)
    assert raw not in str(caught.value)  # no token echoed
    return caught.value


async def test_a_token_of_the_tenant_for_the_api_is_accepted_with_its_claims() -> None:
    tenant = Tenant()
    claims = await tenant.verifier().verify(token())
    assert claims["tid"] == TENANT
    assert claims["roles"] == ["Keyward.Operator"]
    assert tenant.fetches == [metadata_url(AUTHORITY, TENANT),
                              f"{AUTHORITY}/{TENANT}/discovery/v2.0/keys"]  # fmt: skip


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ("not-a-jwt", "MalformedToken"),
        (token(lifetime=60, issued=int(time.time()) - 3600), "TokenExpired"),
        (token(issued=int(time.time()) + 3600), "TokenNotYetValid"),
        (token(audience="api://someone-else"), "InvalidAudience"),
        (token(tenant=OTHER_TENANT), "WrongTenant"),
        (token(issuer=f"https://sts.windows.net/{TENANT}/"), "InvalidIssuer"),
        (token(issuer=f"https://evil.example/{TENANT}/v2.0"), "InvalidIssuer"),
        (token(key=STRANGER), "InvalidSignature"),
        (token(kid="unknown"), "UnknownSigningKey"),
        (token(drop=("oid",)), "MalformedToken"),
        (token(drop=("exp",)), "MalformedToken"),
        (token(drop=("azp",)), "NotAnAccessToken"),
    ],
    ids=[
        "garbage",
        "expired",
        "not-yet",
        "audience",
        "tenant",
        "v1-issuer",
        "issuer",
        "signature",
        "kid",
        "no-oid",
        "no-exp",
        "id-token",
    ],
)
async def test_each_refusal_names_its_reason(raw: str, code: str) -> None:
    assert (await _refused(Tenant().verifier(), raw)).code == code


async def test_a_v1_token_is_told_to_ask_for_v2_tokens() -> None:
    refused = await _refused(
        Tenant().verifier(), token(issuer=f"https://sts.windows.net/{TENANT}/")
    )
    assert "requestedAccessTokenVersion" in str(refused)


@pytest.mark.parametrize("algorithm", ["HS256", "none", "RS512", "PS256"])
async def test_only_rs256_is_accepted_whatever_the_key(algorithm: str) -> None:
    """``none`` and HMAC are refused before any key is looked at: the tenant's public key
    (which anyone can read) must never become an HMAC secret."""
    tenant = Tenant()
    if algorithm == "none":
        raw = jwt.encode({"tid": TENANT}, None, algorithm="none", headers={"kid": "k1"})
    elif algorithm == "HS256":
        raw = jwt.encode({"tid": TENANT}, "k" * 32, algorithm="HS256", headers={"kid": "k1"})
    else:
        raw = token(algorithm=algorithm)
    assert (await _refused(tenant.verifier(), raw)).code == "UnsupportedAlgorithm"
    assert tenant.fetches == []


async def test_an_unknown_kid_fetches_the_keys_again_but_not_more_than_once_per_floor() -> None:
    tenant = Tenant()
    verifier = tenant.verifier()
    await verifier.verify(token())
    # Entra rolls its keys over: a token signed with a new key is accepted at once.
    tenant.keys.append(_jwk(STRANGER, "k2"))
    tenant.clock += MIN_REFRESH_SECONDS
    await verifier.verify(token(key=STRANGER, kid="k2"))
    assert len(tenant.fetches) == 4
    # Forged key ids within the floor fetch nothing more.
    for _ in range(5):
        assert (await _refused(verifier, token(kid="forged"))).code == "UnknownSigningKey"
    assert len(tenant.fetches) == 4
    await verifier.verify(token())  # known keys still need no fetch


async def test_unreadable_keys_answer_unavailable_not_a_token_refusal() -> None:
    async def down(url: str) -> Mapping[str, Any]:
        raise OSError("connection refused")

    verifier = EntraTokenVerifier(tenant_id=TENANT, audiences=[AUDIENCE], authority=AUTHORITY,
                                  fetch=down)  # fmt: skip
    with pytest.raises(AdminAuthUnavailableError) as caught:
        await verifier.verify(token())
    assert (caught.value.code, caught.value.status) == ("SigningKeysUnavailable", 503)


async def test_metadata_naming_another_issuer_or_host_is_not_trusted() -> None:
    async def lying(url: str) -> Mapping[str, Any]:
        return {"issuer": v2_issuer(AUTHORITY, TENANT),
                "jwks_uri": "https://evil.example/keys"}  # fmt: skip

    verifier = EntraTokenVerifier(tenant_id=TENANT, audiences=[AUDIENCE], authority=AUTHORITY,
                                  fetch=lying)  # fmt: skip
    with pytest.raises(AdminAuthUnavailableError):
        await verifier.verify(token())


async def test_an_outage_is_asked_again_after_the_floor_not_on_every_call() -> None:
    tenant = Tenant()
    up = False

    async def flaky(url: str) -> Mapping[str, Any]:
        if not up:
            tenant.fetches.append(url)
            raise OSError("connection refused")
        return await tenant.fetch(url)

    verifier = EntraTokenVerifier(tenant_id=TENANT, audiences=[AUDIENCE], authority=AUTHORITY,
                                  fetch=flaky, clock=lambda: tenant.clock)  # fmt: skip
    for _ in range(3):
        with pytest.raises(AdminAuthUnavailableError):
            await verifier.verify(token())
    assert len(tenant.fetches) == 1
    up = True
    tenant.clock += MIN_REFRESH_SECONDS
    assert (await verifier.verify(token()))["tid"] == TENANT
