"""Building vault onboarding (``connect-vault``, ``disconnect-vault``, ``doctor``) from the
deployment's settings: the ARM clients as the app builds them, and read-only Storage clients
(doctor must not create the tables and queue it checks, as ``AppContext.build`` would).

Whether keyward's identity needs Key Vault Reader follows the kind registry
(:data:`shared.composition._dependents.KINDS`): any watched kind of key-dependent resource
with subscriptions has verdicts that read the vault."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from azure.core.credentials_async import AsyncTokenCredential
from azure.data.tables.aio import TableServiceClient
from azure.storage.blob.aio import BlobServiceClient
from azure.storage.queue.aio import QueueServiceClient

from shared.adapters._pipeline import NO_REDIRECTS
from shared.adapters.onboarding import ArmOnboarding, StorageNameProbe
from shared.composition._clients import arm_clients
from shared.composition._context import STATE_TABLE, default_credential
from shared.composition._dependents import KINDS
from shared.errors import ConfigurationError
from shared.onboarding import DeadLetterTarget
from shared.services.onboarding import Deployment, Onboarding, StorageNames, StorageNeeds
from shared.settings import Settings


@dataclass
class OnboardingSession:
    """Onboarding for one command; ``aclose`` closes every client it opened.

    ``onboarding`` is ``None`` when the deployment's flags were wrong (``deployment_error``
    says how): doctor still checks storage through ``storage``."""

    onboarding: Onboarding | None
    needs: StorageNeeds
    _closers: list[object]
    storage: StorageNames | None = None
    deployment_error: str | None = None

    def require(self) -> Onboarding:
        """The onboarding, or the deployment's error (connect-vault, disconnect-vault).

        Raises:
            ConfigurationError: ``--function-app`` or ``--dead-letter-account`` was wrong.
        """
        if self.onboarding is None:
            raise ConfigurationError(self.deployment_error or "no deployment")
        return self.onboarding

    async def aclose(self) -> None:
        for closer in reversed(self._closers):
            await closer.close()  # type: ignore[attr-defined]


def deployment_for(
    settings: Settings,
    *,
    function_app_id: str,
    principal_id: str,
    subscription_ids: Sequence[str] = (),
    dead_letter_account_id: str | None = None,
) -> Deployment:
    """The deployment's onboarding inputs: the Function App (its subscription is the default
    one searched for vaults), keyward's identity, and the dead-letter container the settings
    name (``KEYWARD_DEADLETTER_CONTAINER``) in the storage account given by resource id."""
    parts = function_app_id.strip("/").split("/")
    if len(parts) < 8 or parts[0].lower() != "subscriptions" or parts[5].lower() != "microsoft.web":
        raise ConfigurationError(
            f"--function-app {function_app_id!r} is not a Function App resource id"
        )
    dead_letter = None
    if settings.deadletter_container is not None:
        if not dead_letter_account_id:
            raise ConfigurationError(
                "KEYWARD_DEADLETTER_CONTAINER is set: give --dead-letter-account "
                "(the storage account's resource id)"
            )
        dead_letter = DeadLetterTarget(str(dead_letter_account_id), settings.deadletter_container)
    return Deployment(
        function_app_id=function_app_id.rstrip("/"),
        principal_id=principal_id,
        subscription_ids=tuple(subscription_ids) or (parts[1],),
        dead_letter=dead_letter,
        dependent_verdicts=dependent_verdicts(settings),
    )


def dependent_verdicts(settings: Settings) -> bool:
    """Whether any registered kind the settings watch has subscriptions (face, cognitive,
    storage...): then its verdicts read vaults, and keyward's identity needs Key Vault Reader."""
    return any(settings.dependent(kind.name).enabled for kind in KINDS)


def open_onboarding(
    settings: Settings,
    deployment: Deployment | None,
    credential: AsyncTokenCredential | None = None,
    *,
    deployment_error: str | None = None,
) -> OnboardingSession:
    """Onboarding over ``settings``' ARM endpoint and storage (no network call here); with no
    ``deployment`` (its flags were wrong: ``deployment_error``), the storage probe only."""
    closers: list[object] = []
    if credential is None:
        credential = default_credential(settings)
        closers.append(credential)
    arm = arm_clients(settings, credential)
    closers.append(arm)
    storage = settings.storage
    if storage.connection_string is not None:
        conn = storage.connection_string
        probe = StorageNameProbe(
            TableServiceClient.from_connection_string(conn, **NO_REDIRECTS),
            QueueServiceClient.from_connection_string(conn, **NO_REDIRECTS),
            BlobServiceClient.from_connection_string(conn, **NO_REDIRECTS),
        )
    else:
        assert storage.table_url
        assert storage.queue_url
        assert storage.blob_url
        probe = StorageNameProbe(
            TableServiceClient(storage.table_url, credential=credential, **NO_REDIRECTS),
            QueueServiceClient(storage.queue_url, credential=credential, **NO_REDIRECTS),
            BlobServiceClient(storage.blob_url, credential=credential, **NO_REDIRECTS),
        )
    closers.append(probe)
    needs = StorageNeeds(
        tables=(STATE_TABLE, settings.dek_table),
        queue=settings.job_queue,
        container=settings.deadletter_container,
    )
    onboarding = None if deployment is None else Onboarding(ArmOnboarding(arm), deployment, probe)
    return OnboardingSession(onboarding, needs, closers, probe, deployment_error)
