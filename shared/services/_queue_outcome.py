"""What one message taken from keyward's queue came to, as the function logs it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class QueueOutcome:
    """One non-rewrap queue message's outcome; ``log_line`` is the function's one log line.

    Attributes:
        status: ``completed`` | ``dropped`` (malformed or foreign) | ``refused`` (recorded,
            acknowledged: a permanent refusal).
        kind: the message kind (``follow-up``).
        subject: what it was about (the event id), when it could be read.
        detail: a short, log-safe explanation.
    """

    status: str
    kind: str
    subject: str | None = None
    detail: str = ""

    def log_line(self) -> str:
        return f"{self.kind} {self.status} event={self.subject} {self.detail}".rstrip()
