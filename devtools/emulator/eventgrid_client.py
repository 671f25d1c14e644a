"""Synchronous helpers for the emulator's Event Grid control routes (tests and the demo).

Example::

    grid = EventGridControl(emulator_url, ca_path)
    grid.subscribe(
        "keyward",
        topic=vault_arm_id,
        endpoint=host.event_grid_webhook_url("key_events"),
        schema="CloudEventSchemaV1_0",
        included_event_types=["Microsoft.KeyVault.KeyNewVersionCreated"],
    )
    ...
    grid.drain()
    topic = grid.create_topic("keyward-out", input_schema="CloudEventSchemaV1_0")
    # EventGridPublisherClient(topic["endpoint"], AzureKeyCredential(topic["key1"]))
    events = grid.sunk_events("keyward-out")
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from devtools.emulator.arm_client import ControlSession

BASE = "/control/eventgrid"


class EventGridControl:
    def __init__(self, base_url: str, ca_path: str | Path) -> None:
        self.session = ControlSession(base_url, ca_path)

    # --- subscriptions ------------------------------------------------------------------------

    def subscribe(
        self,
        name: str,
        *,
        topic: str,
        endpoint: str,
        schema: str = "EventGridSchema",
        included_event_types: list[str] | None = None,
        subject_begins_with: str = "",
        subject_ends_with: str = "",
        max_delivery_attempts: int = 30,
        event_ttl_minutes: int = 1440,
        max_events_per_batch: int = 1,
        dead_letter: bool = False,
        skip_validation: bool = False,
        dead_letter_container: str | None = None,
        dead_letter_connection: str | None = None,
    ) -> dict[str, Any]:
        """Create or replace an event subscription; the webhook handshake runs first.

        ``topic`` is a vault's ARM id (Key Vault events), ``/subscriptions/{id}`` or a resource
        group id (``Microsoft.Resources`` events). Raises ``ControlError`` (400) when the
        handshake fails, as Azure refuses to create the subscription.
        """
        body: dict[str, Any] = {
            "topic": topic,
            "endpoint": endpoint,
            "eventDeliverySchema": schema,
            "subjectBeginsWith": subject_begins_with,
            "subjectEndsWith": subject_ends_with,
            "maxDeliveryAttempts": max_delivery_attempts,
            "eventTimeToLiveInMinutes": event_ttl_minutes,
            "maxEventsPerBatch": max_events_per_batch,
            "deadLetter": dead_letter,
            "skipValidation": skip_validation,
        }
        if included_event_types is not None:
            body["includedEventTypes"] = included_event_types
        if dead_letter_container is not None:
            body["deadLetterDestination"] = {
                "blobContainerName": dead_letter_container,
                "connectionString": dead_letter_connection,
            }
        result: dict[str, Any] = self.session.call("PUT", f"{BASE}/subscriptions/{name}", body)
        return result

    def unsubscribe(self, name: str) -> None:
        self.session.call("DELETE", f"{BASE}/subscriptions/{name}")

    def subscriptions(self) -> list[dict[str, Any]]:
        return self._values(f"{BASE}/subscriptions")

    # --- records ------------------------------------------------------------------------------

    def published(self, *, topic: str = "", event_type: str = "") -> list[dict[str, Any]]:
        """Every event published on the emulator's system topics (Event Grid schema)."""
        query = _query(topic=topic, eventType=event_type)
        return self._values(f"{BASE}/events{query}")

    def deliveries(self, subscription: str = "") -> list[dict[str, Any]]:
        """Every attempt: ``{subscription, eventIds, deliveryCount, time, status, outcome,
        durationMs, kind, duplicate}``."""
        return self._values(f"{BASE}/deliveries{_query(subscription=subscription)}")

    def dead_letters(
        self, subscription: str = "", *, dropped: bool = False
    ) -> list[dict[str, Any]]:
        query = _query(subscription=subscription, dropped="true" if dropped else "")
        return self._values(f"{BASE}/deadletters{query}")

    def configure(
        self,
        *,
        time_scale: float | None = None,
        response_timeout: float | None = None,
        jitter: float | None = None,
        duplicate_rate: float | None = None,
        reorder_window: float | None = None,
        seed: int | None = None,
        webhook_ca_files: list[str] | None = None,
    ) -> dict[str, Any]:
        """Change delivery settings; omitted ones stay as they are."""
        wanted = {
            "timeScale": time_scale,
            "responseTimeout": response_timeout,
            "jitter": jitter,
            "duplicateRate": duplicate_rate,
            "reorderWindow": reorder_window,
            "seed": seed,
            "webhookCaFiles": webhook_ca_files,
        }
        body = {k: v for k, v in wanted.items() if v is not None}
        result: dict[str, Any] = self.session.call("PUT", f"{BASE}/settings", body)
        return result

    def drain(self, timeout: float = 10.0) -> bool:
        """Wait until no delivery is queued or waiting for a retry; False on timeout."""
        result = self.session.call("POST", f"{BASE}/drain", {"timeout": timeout})
        return bool(result["idle"])

    def reset(self) -> None:
        self.session.call("POST", f"{BASE}/reset", {})

    # --- custom topics ------------------------------------------------------------------------

    def create_topic(
        self,
        name: str,
        *,
        input_schema: str = "EventGridSchema",
        key1: str | None = None,
        key2: str | None = None,
    ) -> dict[str, Any]:
        """Make a custom topic; returns ``{name, id, endpoint, inputSchema, key1, key2}``."""
        body: dict[str, Any] = {"inputSchema": input_schema}
        if key1 is not None:
            body["key1"] = key1
        if key2 is not None:
            body["key2"] = key2
        result: dict[str, Any] = self.session.call("PUT", f"{BASE}/topics/{name}", body)
        return result

    def sunk_events(self, topic: str) -> list[dict[str, Any]]:
        """What was published to ``topic``: ``{receivedAt, auth, contentType, event}``."""
        return self._values(f"{BASE}/topics/{topic}/events")

    def clear_sunk(self, topic: str) -> None:
        self.session.call("DELETE", f"{BASE}/topics/{topic}/events")

    def _values(self, path: str) -> list[dict[str, Any]]:
        result = self.session.call("GET", path)
        return list(result["value"])


def _query(**params: str) -> str:
    from urllib.parse import urlencode

    present = {k: v for k, v in params.items() if v}
    return f"?{urlencode(present)}" if present else ""
