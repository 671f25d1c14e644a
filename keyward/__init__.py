"""keyward's application API: ``from keyward import open_envelope``.

A tiny stable import path over ``shared.application`` (the composition for applications)
and the types an application meets: the envelope, its settings, the store modes and the
errors it may catch.
"""

from shared.application import open_envelope
from shared.errors import (
    ConfigurationError,
    IntegrityError,
    InvalidInputError,
    KeyDisabledError,
    KeywardError,
    ServiceError,
)
from shared.records import (
    Envelope,
    EnvelopeSettings,
    RecordNotFoundError,
    StoredRecord,
    StoreMode,
)

__all__ = [
    "ConfigurationError",
    "Envelope",
    "EnvelopeSettings",
    "IntegrityError",
    "InvalidInputError",
    "KeyDisabledError",
    "KeywardError",
    "RecordNotFoundError",
    "ServiceError",
    "StoreMode",
    "StoredRecord",
    "open_envelope",
]
