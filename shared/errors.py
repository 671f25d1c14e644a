"""The one error hierarchy keyward's callers catch.

Two families are kept apart on purpose (as pyca/cryptography does): *misuse* of an API
(bad lengths, unknown versions, malformed ids) raises ``InvalidInputError``, which is also a
``ValueError``; a cryptographic *integrity* failure (tampered ciphertext, wrong key, wrong
KCV) raises ``IntegrityError``. Adapters translate every Azure SDK exception into one of the
``ServiceError`` subclasses so nothing above them sees SDK types.

No exception message ever contains key material: messages name key ids, lengths and
reasons, never bytes.
"""

from __future__ import annotations

import math

#: The longest ``Retry-After`` keyward obeys, in seconds: the one cap for every parser, limiter
#: and retry loop. Key Vault's throttling window is 10 seconds and Storage asks for seconds, so
#: a larger answer (hours, ``inf``, an HTTP date far ahead) is a broken or hostile header; obeying
#: it would hold a rewrap slice past the Functions timeout (or, for ``inf``, overflow the limiter).
MAX_RETRY_AFTER_SECONDS = 60.0


def cap_retry_after(seconds: float | None) -> float | None:
    """``seconds`` made safe to sleep on: finite, in ``[0, MAX_RETRY_AFTER_SECONDS]``.

    ``None`` (and NaN, which says nothing) stay ``None``: the caller picks its own backoff.
    """
    if seconds is None or math.isnan(seconds):
        return None
    return min(MAX_RETRY_AFTER_SECONDS, max(0.0, seconds))


class KeywardError(Exception):
    """Base of every error keyward raises on purpose."""


class InvalidInputError(KeywardError, ValueError):
    """The caller passed something malformed: wrong length, unknown version, bad key id."""


class UnsupportedAlgorithmError(InvalidInputError):
    """The algorithm is unknown, or refused for this operation (e.g. wrapping with RSA1_5)."""


class IntegrityError(KeywardError):
    """Authenticated decryption or unwrap failed: tampered, truncated, or the wrong key."""


class KeyIdError(InvalidInputError):
    """A Key Vault key identifier is malformed or names a vault host keyward does not trust."""


class VaultNotAllowedError(KeyIdError):
    """The vault is well formed but not on the configured allow-list; no call was made."""


class ServiceError(KeywardError):
    """A remote service (Key Vault, Storage, ARM, Event Grid) refused or failed a request.

    Attributes:
        status: the HTTP status code when one was received, else ``None``.
        code: the service's error code string when one was received, else ``None``.
    """

    #: Whether retrying the same request later may succeed.
    transient: bool = False

    def __init__(self, message: str, *, status: int | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


class AccessDeniedError(ServiceError):
    """401/403: the caller's identity may not perform this operation on this resource."""


class KeyNotFoundError(ServiceError):
    """404: the key, the key version, or the vault does not exist (or is deleted)."""


class KeyDisabledError(ServiceError):
    """The key or version exists but is disabled, expired, not yet valid, or lacks the op."""


class ConflictError(ServiceError):
    """409/412: a conditional write lost a race (ETag mismatch) or the entity already exists."""


class ThrottledError(ServiceError):
    """429: the service asked us to slow down.

    Attributes:
        retry_after: seconds the service asked us to wait, when it said so, capped by
            :func:`cap_retry_after` (finite, at most ``MAX_RETRY_AFTER_SECONDS``).
    """

    transient = True

    def __init__(
        self,
        message: str,
        *,
        retry_after: float | None = None,
        status: int | None = 429,
        code: str | None = None,
    ) -> None:
        super().__init__(message, status=status, code=code)
        self.retry_after = cap_retry_after(retry_after)


class ForeignOriginError(ServiceError):
    """A request an SDK pager or poller was about to send (a ``nextLink``, a polling URL)
    named another origin than the client's endpoint; it was not sent. Not transient: the
    same answer would name the same host again."""


class TransientServiceError(ServiceError):
    """5xx, timeouts, dropped connections: retry with backoff."""

    transient = True


class ConfigurationError(KeywardError):
    """An app setting is missing or invalid; the message names the setting."""


class EventRejectedError(InvalidInputError):
    """An incoming event is malformed, foreign or inconsistent; nothing was done with it.

    Recorded and acknowledged, never retried: Event Grid redelivers only what raises, and a
    bad event would fail the same way every time.

    Attributes:
        reason: a machine-readable reason (a ``shared.events.RejectionReason`` value).
        detail: a human-readable explanation naming the field at fault (no key material).
        event_id: the event's id when one could be read, else ``None``.
    """

    def __init__(self, reason: str, detail: str, *, event_id: str | None = None) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail
        self.event_id = event_id


class SettingError(ConfigurationError):
    """One app setting is missing or invalid.

    Attributes:
        setting: the setting's name, so the message and the operator agree on what to fix.
    """

    def __init__(self, setting: str, message: str) -> None:
        super().__init__(f"{setting}: {message}")
        self.setting = setting


class RetirementBlockedError(KeywardError):
    """A key version cannot be retired yet: DEKs or resources still depend on it.

    Attributes:
        blockers: what still depends on the version, one human-readable line each.
    """

    #: The admin API's error code for this refusal.
    code_name = "RetirementBlocked"

    def __init__(self, message: str, blockers: list[str]) -> None:
        super().__init__(message)
        self.blockers = blockers


class RetirementRaceError(RetirementBlockedError):
    """A retire call dropped the previous wraps, then found something new under the version
    (a write that raced the retirement): the version stays retired, but is not safe yet.

    Attributes:
        dropped: previous wraps the call dropped before it looked again.
    """

    code_name = "RetirementRace"

    def __init__(self, message: str, blockers: list[str], *, dropped: int) -> None:
        super().__init__(message, blockers)
        self.dropped = dropped


class AdminAuthError(KeywardError):
    """A call to the admin API was refused before anything ran: who called was not proven
    (401), may not do this (403), or the API cannot check (503: not configured, or the
    tenant's signing keys could not be read). Messages name the reason, never the token.

    Attributes:
        status: the HTTP status the admin API answers.
        code: a machine-readable reason (``MissingToken``, ``TokenExpired``, ...).
    """

    status = 401

    def __init__(self, code: str, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        if status is not None:
            self.status = status


class UnauthenticatedError(AdminAuthError):
    """401: no bearer token, or one keyward does not accept (malformed, expired, badly
    signed, another tenant's, another audience's)."""

    status = 401


class ForbiddenError(AdminAuthError):
    """403: a valid token without the app role the route needs."""

    status = 403


class AdminAuthUnavailableError(AdminAuthError):
    """The admin API cannot check tokens, so every admin route refuses (fail closed): 500
    when its settings are missing (``AdminAuthNotConfigured``), 503 when the tenant's OpenID
    metadata or signing keys could not be read (``SigningKeysUnavailable``)."""

    status = 503
