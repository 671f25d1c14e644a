"""keyward's outgoing flag events: CloudEvents 1.0 on an Event Grid topic (azure-eventgrid aio).

One event per verdict change (``Keyward.FaceAccount.KeyAccessLost``, ``.KeyAccessRestored``,
``.KeyAtRisk``, ``.KeyRepointed``), subject the account's ARM id, data as built by
:func:`shared.face.next_flag_state`. The event id is chosen by the caller and is stable across
a replay (see the Face service), so a subscriber that deduplicates on ``id`` sees a crash-and-
retry as one event: Event Grid itself delivers at least once.

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
from shared.face import PublishEvent

_LOG = logging.getLogger(__name__)
#: CloudEvents ``source`` of every keyward event.
EVENT_SOURCE = "/keyward/face-accounts"


class EventGridFlagPublisher:
    """A :class:`shared.face.FlagPublisher` over ``EventGridPublisherClient``."""

    def __init__(
        self,
        endpoint: str,
        credential: AsyncTokenCredential | AzureKeyCredential,
        *,
        ca_bundle: str | None = None,
        source: str = EVENT_SOURCE,
    ) -> None:
        self._client = EventGridPublisherClient(endpoint, credential)
        self._send_kwargs: dict[str, Any] = {"connection_verify": ca_bundle} if ca_bundle else {}
        self._source = source
        self._endpoint = endpoint

    async def publish(self, event: PublishEvent, *, event_id: str | None = None) -> None:
        """Send ``event`` as one CloudEvent (``event_id`` keeps a replay's id stable).

        Raises:
            AccessDeniedError: the credential may not send to the topic.
            ThrottledError, TransientServiceError: retry later.
            ServiceError: any other refusal.
        """
        cloud_event: CloudEvent[dict[str, object]] = CloudEvent(
            source=self._source,
            type=event.event_type.value,
            subject=event.subject,
            data=_plain(event.data),
        )
        if event_id:
            cloud_event.id = event_id
        with translated("publish flag event"):
            await self._client.send([cloud_event], **self._send_kwargs)
        _LOG.info(
            "published %s for %s (id %s)", event.event_type.value, event.subject, cloud_event.id
        )

    async def close(self) -> None:
        await self._client.close()

    def __repr__(self) -> str:
        return f"EventGridFlagPublisher(endpoint={self._endpoint!r})"


def _plain(data: Mapping[str, object]) -> dict[str, object]:
    """A JSON-ready copy (the record's mapping is read-only; lists stay lists)."""
    return {str(k): list(v) if isinstance(v, tuple) else v for k, v in data.items()}
