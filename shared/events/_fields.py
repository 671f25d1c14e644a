"""Reading fields out of untrusted event dicts: names case-insensitive, whitespace stripped.

Key Vault's published samples disagree with each other (``ObjectName`` vs ``objectName``,
``"ObjectName "`` with a stray space, ``NBF`` as a number or a string, ``specVersion`` with a
capital V), so every lookup goes through ``Fields``. Two names that collide once folded
(``Id`` and ``id ``) with different values are refused as ambiguous rather than guessed at.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, datetime

from shared.errors import EventRejectedError
from shared.events._types import RejectionReason

#: Longest string value read from an event. Key ids are capped at 2,048 by the parser; ARM
#: ids are shorter than that in practice. Anything longer is refused, not truncated.
MAX_FIELD_LENGTH = 4096


def reject(reason: RejectionReason, detail: str, event_id: str | None = None) -> EventRejectedError:
    """Build the one exception type parsing raises (the caller raises it)."""
    return EventRejectedError(reason.value, detail, event_id=event_id)


class Fields:
    """A read-only, case- and whitespace-insensitive view of one JSON object."""

    def __init__(self, raw: Mapping[object, object], where: str, event_id: str | None = None):
        self._where = where
        self.event_id = event_id
        folded: dict[str, object] = {}
        for key, value in raw.items():
            if not isinstance(key, str):
                raise reject(
                    RejectionReason.BAD_FIELD_TYPE, f"{where} has a non-string key", event_id
                )
            name = key.strip().lower()
            if name in folded and folded[name] != value:
                raise reject(
                    RejectionReason.AMBIGUOUS_FIELD,
                    f"{where} has two different values for {key.strip()!r}",
                    event_id,
                )
            folded[name] = value
        self._values = folded

    def has(self, name: str) -> bool:
        return self.raw(name) is not None

    def raw(self, name: str) -> object:
        return self._values.get(name.lower())

    def text(self, name: str, *, required: bool = True) -> str | None:
        """A string field with surrounding whitespace stripped; empty counts as absent."""
        value = self.raw(name)
        if value is None or (isinstance(value, str) and not value.strip()):
            if required:
                raise reject(
                    RejectionReason.MISSING_FIELD, f"{self._where}.{name} is missing", self.event_id
                )
            return None
        if not isinstance(value, str):
            raise reject(
                RejectionReason.BAD_FIELD_TYPE,
                f"{self._where}.{name} must be a string, not {type(value).__name__}",
                self.event_id,
            )
        if len(value) > MAX_FIELD_LENGTH:
            raise reject(
                RejectionReason.BAD_FIELD_TYPE,
                f"{self._where}.{name} is longer than {MAX_FIELD_LENGTH} characters",
                self.event_id,
            )
        return value.strip()

    def required_text(self, name: str) -> str:
        value = self.text(name)
        assert value is not None
        return value

    def mapping(self, name: str) -> Fields:
        value = self.raw(name)
        if value is None:
            raise reject(
                RejectionReason.MISSING_FIELD, f"{self._where}.{name} is missing", self.event_id
            )
        if not isinstance(value, Mapping):
            raise reject(
                RejectionReason.BAD_FIELD_TYPE,
                f"{self._where}.{name} must be an object, not {type(value).__name__}",
                self.event_id,
            )
        return Fields(value, f"{self._where}.{name}", self.event_id)

    def epoch_time(self, name: str) -> datetime | None:
        """NBF/EXP: seconds since the epoch as a number or numeric string, or null."""
        value = self.raw(name)
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        try:
            return to_datetime(value)
        except ValueError as exc:
            raise reject(
                RejectionReason.BAD_TIMESTAMP, f"{self._where}.{name}: {exc}", self.event_id
            ) from None

    def iso_time(self, name: str, *, required: bool) -> datetime | None:
        """eventTime / time: an RFC 3339 timestamp (or a datetime the binding parsed)."""
        value = self.raw(name)
        if isinstance(value, datetime):
            return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
        text = self.text(name, required=required)
        if text is None:
            return None
        try:
            return to_datetime(text)
        except ValueError as exc:
            raise reject(
                RejectionReason.BAD_TIMESTAMP, f"{self._where}.{name}: {exc}", self.event_id
            ) from None


def to_datetime(value: object) -> datetime:
    """Epoch seconds (number or numeric string) or an ISO 8601 string, as aware UTC.

    Raises:
        ValueError: anything else, including booleans, NaN, infinities and out-of-range values.
    """
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"expected epoch seconds or an ISO 8601 time, got {type(value).__name__}")
    if isinstance(value, str):
        text = value.strip()
        if len(text) > 64:
            raise ValueError("timestamp text is too long")
        try:
            seconds: float = float(text)
        except ValueError:
            return _from_iso(text)
    else:
        seconds = value
    if isinstance(seconds, float) and not math.isfinite(seconds):
        raise ValueError("timestamp is not a finite number")
    try:
        return datetime.fromtimestamp(seconds, UTC)
    except (OverflowError, OSError, ValueError):
        raise ValueError("timestamp is out of range") from None


def _from_iso(text: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{text[:40]!r} is not epoch seconds or an ISO 8601 time") from None
    if parsed.tzinfo is None:
        # Event Grid always sends UTC ("Z"); a zone-less time is read as UTC, not local time.
        parsed = parsed.replace(tzinfo=UTC)
    try:
        return parsed.astimezone(UTC)
    except OverflowError:
        raise ValueError("timestamp is out of range") from None
