"""Configured once: Azure Monitor when ``APPLICATIONINSIGHTS_CONNECTION_STRING`` is present,
nothing exported when it is absent, the worker's own configuration left alone, and the
connection string never printed or logged.

Each case runs in a fresh interpreter: OpenTelemetry's global providers can be set once per
process, so the test process (which installs an in-memory SDK) cannot show the absent case.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
#: A well-formed connection string to an ingestion endpoint nothing listens on.
CONNECTION = (
    "InstrumentationKey=5e0f9c2a-1111-4222-8333-c0ffee000001;"
    "IngestionEndpoint=https://127.0.0.1:9/;LiveEndpoint=https://127.0.0.1:9/"
)

_PROBE = """
import json, logging, os, sys
logging.basicConfig(level=logging.DEBUG, stream=sys.stderr)
if os.environ.get("PRE_INSTALL") == "1":
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    trace.set_tracer_provider(TracerProvider())
from opentelemetry import metrics, trace
from shared.adapters.telemetry import configure_telemetry, sdk_installed
first = configure_telemetry(os.environ)
second = configure_telemetry({})
from shared import telemetry
with telemetry.invocation_span("sweep", trigger="timer") as span:
    # The distro samples (rate limited by default): a valid context, not recording, shows the
    # SDK at work; the API's no-op has no context at all without a parent.
    traced = span.get_span_context().is_valid
    telemetry.vault_operation("kv.vault.azure.net")
print(json.dumps({
    "first": first.value,
    "second": second.value,
    "sdk": sdk_installed(),
    "traced": traced,
    "distro_imported": "azure.monitor.opentelemetry" in sys.modules,
    "meter_provider": type(metrics.get_meter_provider()).__module__,
}))
sys.stdout.flush()
os._exit(0)  # no exporter flush to the unreachable endpoint
"""


def _probe(**env: str) -> tuple[dict[str, object], str]:
    clean = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("APPLICATIONINSIGHTS_", "OTEL_", "PYTHON_APPLICATIONINSIGHTS_"))
    }
    clean.update(APPLICATIONINSIGHTS_STATSBEAT_DISABLED_ALL="true", **env)
    result = subprocess.run(
        [sys.executable, "-c", _PROBE],
        cwd=ROOT,
        env=clean,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout.strip().splitlines()[-1]), result.stdout + result.stderr


def test_without_a_connection_string_nothing_is_configured_and_nothing_recorded() -> None:
    outcome, _ = _probe()
    assert outcome == {
        "first": "none",
        "second": "none",
        "sdk": False,
        "traced": False,
        "distro_imported": False,
        "meter_provider": "opentelemetry.metrics._internal",
    }


def test_with_a_connection_string_azure_monitor_is_configured_once_and_never_printed() -> None:
    outcome, output = _probe(APPLICATIONINSIGHTS_CONNECTION_STRING=CONNECTION)
    assert outcome["first"] == outcome["second"] == "azure_monitor"
    assert outcome["sdk"] is True
    assert outcome["traced"] is True
    assert outcome["distro_imported"] is True
    assert str(outcome["meter_provider"]).startswith("opentelemetry.sdk")
    assert "telemetry: azure_monitor" in output
    assert "c0ffee000001" not in output


def test_a_provider_the_worker_installed_is_left_alone() -> None:
    """``PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY=true``: the worker configures Azure
    Monitor before the app's code runs; a second configuration would export twice."""
    outcome, _ = _probe(APPLICATIONINSIGHTS_CONNECTION_STRING=CONNECTION, PRE_INSTALL="1")
    assert outcome["first"] == "already_configured"
    assert outcome["distro_imported"] is False
    assert outcome["traced"] is True
