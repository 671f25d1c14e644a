"""The emulator's App Service managed identity endpoint, judged by azure-identity itself:
``DefaultAzureCredential`` (aio) finds it through IDENTITY_ENDPOINT/IDENTITY_HEADER and its
tokens name the configured principal to the emulator."""

from __future__ import annotations

import pytest
from azure.core.exceptions import ClientAuthenticationError
from azure.identity.aio import DefaultAzureCredential, ManagedIdentityCredential

from devtools.emulator.auth import authenticate
from devtools.emulator.identity import ManagedIdentityEndpoint
from devtools.emulator.state import EmulatorState, Principal

SYSTEM = "0f0f0f0f-1111-2222-3333-444444444444"
USER = Principal(
    object_id="5a5a5a5a-1111-2222-3333-444444444444",
    client_id="c1c1c1c1-0000-0000-0000-000000000001",
)


@pytest.fixture
async def endpoint(monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    state = EmulatorState()
    state.principals[USER.object_id] = USER
    identity = ManagedIdentityEndpoint(state, SYSTEM)
    await identity.start()
    for name in ("AZURE_CLIENT_ID", "AZURE_TENANT_ID", "AZURE_CLIENT_SECRET", "AZURE_USERNAME",
                 "MSI_ENDPOINT", "MSI_SECRET", "IDENTITY_SERVER_THUMBPRINT", "IMDS_ENDPOINT",
                 "AZURE_FEDERATED_TOKEN_FILE"):  # fmt: skip
        monkeypatch.delenv(name, raising=False)
    for name, value in identity.environment.items():
        monkeypatch.setenv(name, value)
    yield identity
    await identity.stop()


async def test_default_credential_gets_a_token_for_the_system_identity(
    endpoint: ManagedIdentityEndpoint,
) -> None:
    async with DefaultAzureCredential() as credential:
        token = await credential.get_token("https://vault.azure.net/.default")
    caller = authenticate(f"Bearer {token.token}", endpoint.state, ("https://vault.azure.net",))
    assert caller is not None
    assert caller.object_id == SYSTEM
    assert endpoint.requests == 1


async def test_user_assigned_identity_by_client_id(endpoint: ManagedIdentityEndpoint) -> None:
    async with ManagedIdentityCredential(client_id=USER.client_id) as credential:
        token = await credential.get_token("https://management.azure.com/.default")
    audiences = ("https://management.azure.com",)
    caller = authenticate(f"Bearer {token.token}", endpoint.state, audiences)
    assert caller is not None
    assert caller.object_id == USER.object_id


async def test_wrong_secret_is_refused(
    endpoint: ManagedIdentityEndpoint, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IDENTITY_HEADER", "wrong")
    async with ManagedIdentityCredential() as credential:
        with pytest.raises(ClientAuthenticationError):
            await credential.get_token("https://vault.azure.net/.default")
