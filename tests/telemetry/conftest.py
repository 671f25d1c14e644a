"""The end-to-end stack (Azurite, the emulator, the local Functions host) for the telemetry
tests, from tests/e2e."""

from tests.e2e.conftest import stack

__all__ = ["stack"]
