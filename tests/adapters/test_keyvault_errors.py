"""Key Vault's auth challenge: parsing, and the resource it may name (the error mapping is
tested with the one translator, in ``test_azure_errors.py``)."""

from __future__ import annotations

import pytest

from shared.adapters._keyvault_rest import check_challenge_resource, parse_challenge
from shared.errors import AccessDeniedError


def test_parse_challenge() -> None:
    challenge = parse_challenge(
        'Bearer authorization="https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-'
        '2d7cd011db47", resource="https://vault.azure.net"'
    )
    assert challenge.scope == "https://vault.azure.net/.default"
    assert challenge.tenant_id == "72f988bf-86f1-41af-91ab-2d7cd011db47"
    scoped = parse_challenge(
        'Bearer authorization_uri="https://login.x/t1/", scope="https://managedhsm.azure.net/.default"'
    )
    assert scoped.scope == "https://managedhsm.azure.net/.default"
    assert scoped.tenant_id == "t1"
    for bad in ("Basic realm=x", "Bearer resource=x", "Bearer authorization=https://a"):
        with pytest.raises(AccessDeniedError):
            parse_challenge(bad)


def test_challenge_resource_must_match_the_vault_domain() -> None:
    check_challenge_resource("https://vault.azure.net/.default", "https://kv1.vault.azure.net")
    check_challenge_resource(
        "https://managedhsm.azure.net/.default", "https://hsm1.managedhsm.azure.net"
    )
    for scope, url in (
        ("https://evil.com/.default", "https://kv1.vault.azure.net"),
        ("https://vault.azure.net/.default", "https://kv1.vault.azure.net.evil.com"),
        ("https://vault.azure.net/.default", "https://evilvault.azure.net"),
    ):
        with pytest.raises(AccessDeniedError):
            check_challenge_resource(scope, url)
