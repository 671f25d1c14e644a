"""In-process OpenTelemetry for local runs: spans, metrics and log records kept in memory.

The deployed app exports to Application Insights (``shared.adapters.telemetry``); a local run
has no connection string, so nothing would be recorded. The demo and the tests install this
instead, before the first invocation: an SDK tracer provider with an in-memory span exporter,
a meter provider with an in-memory reader, and a logging handler that keeps the records. The
app's own ``configure_telemetry`` then finds an SDK installed and leaves it alone.

OpenTelemetry's global providers can be set once per process, so :func:`in_memory_telemetry`
installs them once and returns the same collector afterwards.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter


@dataclass(frozen=True)
class Point:
    """One metric data point: the metric's name, its attributes and its value."""

    name: str
    attributes: Mapping[str, Any]
    value: float


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@dataclass
class InMemoryTelemetry:
    """What the process recorded since the last :meth:`clear`."""

    spans_exporter: InMemorySpanExporter
    reader: InMemoryMetricReader
    logs: _Records = field(default_factory=_Records)

    def spans(self) -> tuple[ReadableSpan, ...]:
        return tuple(self.spans_exporter.get_finished_spans())

    def points(self) -> list[Point]:
        """Every metric data point now (counters are cumulative since the process began)."""
        data = self.reader.get_metrics_data()
        found: list[Point] = []
        for resource in data.resource_metrics if data else ():
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    for point in metric.data.data_points:
                        value = float(getattr(point, "value", 0))
                        found.append(Point(metric.name, dict(point.attributes or {}), value))
        return found

    def total(self, name: str, **attributes: str) -> float:
        """The sum of ``name``'s points whose attributes include ``attributes``."""
        return sum(
            p.value
            for p in self.points()
            if p.name == name and all(p.attributes.get(k) == v for k, v in attributes.items())
        )

    def log_records(self) -> tuple[logging.LogRecord, ...]:
        return tuple(self.logs.records)

    def clear(self) -> None:
        """Forget spans and log records (metrics are cumulative: filter them by attributes)."""
        self.spans_exporter.clear()
        self.logs.records.clear()

    @contextmanager
    def capturing_logs(self, level: int = logging.INFO) -> Iterator[None]:
        """Keep every log record at ``level`` or above while the block runs."""
        root = logging.getLogger()
        before = root.level
        root.addHandler(self.logs)
        root.setLevel(min(before, level) if before else level)
        self.logs.setLevel(level)
        try:
            yield
        finally:
            root.removeHandler(self.logs)
            root.setLevel(before)

    def summary(self) -> str:
        """A few lines: spans per function, DEKs rewrapped, vault operations, 429s."""
        per_function = Counter(
            str(s.attributes.get("keyward.function")) for s in self.spans() if s.attributes
        )
        names = ", ".join(f"{name} {count}" for name, count in sorted(per_function.items()))
        lines = [
            f"spans: {sum(per_function.values())} ({names or 'none'})",
            f"DEKs rewrapped: {self.total('keyward.rewrap.deks_rewrapped'):.0f}",
            f"items failed: {self.total('keyward.rewrap.items_failed'):.0f}",
            f"vault operations: {self.total('keyward.vault.operations'):.0f}, "
            f"429s: {self.total('keyward.vault.throttled'):.0f}",
            f"events rejected: {self.total('keyward.events.rejected'):.0f}",
        ]
        return "\n".join(lines)


_lock = threading.Lock()
_installed: InMemoryTelemetry | None = None


def in_memory_telemetry() -> InMemoryTelemetry:
    """Install the in-memory providers as the process's global ones (once) and return them.

    Raises:
        RuntimeError: another SDK provider was installed first (it cannot be replaced).
    """
    global _installed
    with _lock:
        if _installed is not None:
            return _installed
        exporter = InMemorySpanExporter()
        tracer_provider = TracerProvider()
        tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
        reader = InMemoryMetricReader()
        trace.set_tracer_provider(tracer_provider)
        metrics.set_meter_provider(MeterProvider(metric_readers=[reader]))
        if trace.get_tracer_provider() is not tracer_provider:
            raise RuntimeError("an OpenTelemetry tracer provider was installed before this one")
        _installed = InMemoryTelemetry(exporter, reader)
        return _installed
