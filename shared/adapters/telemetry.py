"""OpenTelemetry, configured once per process: Azure Monitor when it has a connection string.

The one place that touches the OpenTelemetry SDK and ``azure-monitor-opentelemetry``:

* ``APPLICATIONINSIGHTS_CONNECTION_STRING`` set: ``configure_azure_monitor`` (traces, metrics
  and the ``keyward`` loggers' records, exported to Application Insights), unless the Python
  worker already did (``PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY=true`` makes the worker
  call it at start-up; a second call would export everything twice).
* unset: nothing is configured, so the OpenTelemetry API stays a no-op and nothing is
  exported (a local run, a test, the CLI without a connection string).

The connection string is read here and handed to the distro; it is never logged, stored on an
object or put in an exception (the outcome names only which path was taken).
"""

from __future__ import annotations

import enum
import logging
import threading
from collections.abc import Mapping

from opentelemetry import trace

from shared.settings import TELEMETRY_CONNECTION_SETTING, WORKER_TELEMETRY_DEFAULTS

_log = logging.getLogger("keyward.telemetry")


class TelemetrySetup(enum.Enum):
    """What :func:`configure_telemetry` found or did (once per process)."""

    #: No connection string: nothing is exported.
    NONE = "none"
    #: keyward configured Azure Monitor.
    AZURE_MONITOR = "azure_monitor"
    #: An SDK was already installed (by the Functions worker, or a test): left as it is.
    ALREADY_CONFIGURED = "already_configured"


_lock = threading.Lock()
_setup: TelemetrySetup | None = None


def sdk_installed() -> bool:
    """Whether a real (SDK) tracer provider is installed, not the API's proxy or no-op."""
    provider = trace.get_tracer_provider()
    return type(provider).__module__.startswith("opentelemetry.sdk")


def configure_telemetry(env: Mapping[str, str]) -> TelemetrySetup:
    """Configure OpenTelemetry for this process from ``env``; later calls return the first
    outcome and change nothing (triggers call this on every invocation)."""
    global _setup
    if _setup is not None:
        return _setup
    with _lock:
        if _setup is None:
            _setup = _configure(env)
            _log.info("telemetry: %s", _setup.value)
        return _setup


def _configure(env: Mapping[str, str]) -> TelemetrySetup:
    if sdk_installed():
        return TelemetrySetup.ALREADY_CONFIGURED
    connection = env.get(TELEMETRY_CONNECTION_SETTING, "").strip()
    if not connection:
        return TelemetrySetup.NONE
    from azure.monitor.opentelemetry import configure_azure_monitor

    # The same choices the worker's own configuration reads from its settings: keyward's
    # loggers only (the Azure SDKs log request URLs at INFO), and no span per Azure SDK
    # request (one per Key Vault unwrap would dwarf everything else; vault operations are the
    # keyward.vault.* metrics instead, docs/telemetry.md).
    disabled = WORKER_TELEMETRY_DEFAULTS["OTEL_PYTHON_DISABLED_INSTRUMENTATIONS"].split(",")
    configure_azure_monitor(
        connection_string=connection,
        logger_name=WORKER_TELEMETRY_DEFAULTS["PYTHON_APPLICATIONINSIGHTS_LOGGER_NAME"],
        instrumentation_options={name: {"enabled": False} for name in disabled},
    )
    return TelemetrySetup.AZURE_MONITOR
