"""keyward's outgoing flag events: CloudEvents 1.0 on an Event Grid topic (azure-eventgrid aio).

One event per verdict change, typed by the resource's kind (``Keyward.FaceAccount.KeyAccessLost``,
``.KeyAccessRestored``, ``.KeyAtRisk``, ``.KeyRepointed``; source ``/keyward/face-accounts``),
subject the account's ARM id, data as built by :func:`shared.dependents.next_flag_state`.
One client serves every kind: type and source come with each event. The event id is chosen
by the caller and is stable across a replay (see ``shared.services._dependent_effects``), so
a subscriber that deduplicates on ``id`` sees a crash-and-retry as one event: Event Grid
itself delivers at least once.

Credentials: a ``TokenCredential`` (managed identity, role "EventGrid Data Sender" on the
topic) in production; an ``AzureKeyCredential`` (topic key) only for development. TLS is
verified; ``ca_bundle`` trusts the local emulator's CA. azure-eventgrid 4.22 drops the
constructor's keyword arguments for basic topics, so the CA is passed on each ``send``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from azure.core.credentials import AzureKeyCredential
from azure.core.credentials_async import AsyncTokenCredential
from azure.core.messaging import CloudEvent
from azure.eventgrid.aio import EventGridPublisherClient

from shared.adapters._azure_errors import translated
from shared.adapters._pipeline import NO_REDIRECTS

_LOG = logging.getLogger(__name__)


class EventGridFlagPublisher:
    """Publishes flag events over one ``EventGridPublisherClient``."""

    def __init__(
        self,
        endpoint: str,
        credential: AsyncTokenCredential | AzureKeyCredential,
        *,
        ca_bundle: str | None = None,
    ) -> None:
        # TLS settings belong to the client's transport: passed to ``send`` they would be
        # taken for CloudEvent attributes (azure-eventgrid warns and ignores them there).
        transport: dict[str, Any] = {"connection_verify": ca_bundle} if ca_bundle else {}
        # No redirect is followed (the event body would be re-sent to the new host).
        self._client = EventGridPublisherClient(endpoint, credential, **transport, **NO_REDIRECTS)
        self._endpoint = endpoint

    async def publish(
        self,
        *,
        event_type: str,
        source: str,
        subject: str,
        data: Mapping[str, object],
        event_id: str | None = None,
    ) -> None:
        """Send one CloudEvent (``event_id`` keeps a replay's id stable).

        Raises:
            AccessDeniedError: the credential may not send to the topic.
            ThrottledError, TransientServiceError: retry later.
            ServiceError: any other refusal.
        """
        cloud_event: CloudEvent[dict[str, object]] = CloudEvent(
            source=source, type=event_type, subject=subject, data=_plain(data)
        )
        if event_id:
            cloud_event.id = event_id
        with translated("publish flag event"):
            await self._client.send([cloud_event])
        _LOG.info("published %s for %s (id %s)", event_type, subject, cloud_event.id)

    async def close(self) -> None:
        await self._client.close()

    def __repr__(self) -> str:
        return f"EventGridFlagPublisher(endpoint={self._endpoint!r})"


def _plain(data: Mapping[str, object]) -> dict[str, object]:
    """A JSON-ready copy (the record's mapping is read-only; lists stay lists)."""
    return {str(k): list(v) if isinstance(v, tuple) else v for k, v in data.items()}
