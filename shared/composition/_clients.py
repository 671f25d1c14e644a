"""How the composition root builds the clients it shares, written once.

The app context builds each of these once per process and event loop; the test-facing
builder of one kind's service (``build_dependent_service``) builds them the same way, so a
test exercises the production configuration.
"""

from __future__ import annotations

from azure.core.credentials_async import AsyncTokenCredential

from shared.adapters.arm import ArmClients
from shared.adapters.keyvault import AsyncKeyVaultAdapter
from shared.settings import Settings


def keyvault_adapter(settings: Settings, credential: AsyncTokenCredential) -> AsyncKeyVaultAdapter:
    """The one Key Vault adapter: the rewrap engine's key source and the key-access reader's.

    Sharing it is safe: ``lean_unwrap`` and ``allow_legacy_rsa1_5`` change only the unwrap
    path of its wrappers; the key-access reader calls ``versions``, ``public_key`` and
    ``is_soft_deleted``, which go through the same SDK key clients either way.
    """
    return AsyncKeyVaultAdapter(
        credential,
        settings.vault_allowlist,
        ca_bundle=settings.ca_bundle,
        allow_legacy_rsa1_5=settings.allow_legacy_rsa1_5,
        lean_unwrap=True,
    )


def arm_clients(settings: Settings, credential: AsyncTokenCredential) -> ArmClients:
    """The one ARM client set (per subscription and SDK client, created on first use), every
    request paced at ``KEYWARD_ARM_REQUESTS_PER_SECOND``."""
    return ArmClients.for_endpoint(
        credential,
        settings.arm_endpoint,
        settings.ca_bundle,
        requests_per_second=settings.arm_requests_per_second,
    )
