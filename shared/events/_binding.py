"""Rebuild an event dict from the ``azure.functions`` binding objects, without importing them.

The Event Grid trigger hands the function an ``EventGridEvent`` or a ``CloudEvent`` whose
times are already ``datetime`` objects. ``event_dict_from_binding`` reads their attributes by
name (duck typing keeps this module free of ``azure`` imports) and returns the plain dict
``parse_event`` takes. Note that the converter picks CloudEvents only when the body has a
lower-case ``specversion``; a ``specVersion`` body arrives as an ``EventGridEvent`` with no
type and is refused (``MISSING_FIELD``). Pass the raw JSON body where it is available.
"""

from __future__ import annotations

from typing import Any


def event_dict_from_binding(event: Any) -> dict[str, object]:
    """The schema-shaped dict for an ``azure.functions`` ``EventGridEvent`` or ``CloudEvent``."""
    data = event.get_json()
    if hasattr(event, "specversion"):
        return {
            "specversion": event.specversion,
            "id": event.id,
            "source": event.source,
            "type": event.type,
            "time": event.time,
            "subject": event.subject,
            "data": data,
        }
    return {
        "id": event.id,
        "topic": event.topic,
        "subject": event.subject,
        "eventType": event.event_type,
        "eventTime": event.event_time,
        "data": data,
        "dataVersion": event.data_version,
    }
