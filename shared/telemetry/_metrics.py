"""Recording calls: one function per metric, each one line at its call site.

Instruments come from the global meter provider (the OpenTelemetry API's proxy until the
composition root configures one; instruments made from the proxy follow it once it is set).
They are cached per provider, so a test that installs its own provider gets fresh ones.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

from opentelemetry import metrics

from shared.telemetry._names import (
    ATTR_JOB_ID,
    ATTR_KEY,
    ATTR_KIND,
    ATTR_OUTCOME,
    ATTR_REASON,
    ATTR_SHARD,
    ATTR_VAULT,
    ATTR_VERDICT,
    DEKS_REWRAPPED,
    EVENTS_REJECTED,
    ITEMS_FAILED,
    JOB_PROGRESS,
    METER_NAME,
    METRICS,
    VAULT_OPERATIONS,
    VAULT_THROTTLED,
    VERDICT_CHANGES,
    MetricSpec,
    key_name_of,
    vault_of,
)

_lock = threading.Lock()
_cache: dict[int, dict[str, Any]] = {}


def _instruments() -> dict[str, Any]:
    provider = metrics.get_meter_provider()
    key = id(provider)
    found = _cache.get(key)
    if found is not None:
        return found
    with _lock:
        meter = provider.get_meter(METER_NAME)
        made = {spec.name: _make(meter, spec) for spec in METRICS}
        _cache.clear()  # one provider at a time; an old one's instruments are not kept
        _cache[key] = made
        return made


def _make(meter: metrics.Meter, spec: MetricSpec) -> Any:
    if spec.kind == "gauge":
        return meter.create_gauge(spec.name, unit=spec.unit, description=spec.description)
    return meter.create_counter(spec.name, unit=spec.unit, description=spec.description)


def _key_attributes(key_ref: str, shard: str) -> dict[str, str]:
    return {ATTR_VAULT: vault_of(key_ref), ATTR_KEY: key_name_of(key_ref), ATTR_SHARD: shard}


def page_committed(
    key_ref: str,
    shard: str,
    rewrapped: int,
    unreadable: Mapping[str, int],
    failed: Mapping[str, int],
) -> None:
    """A checkpoint committed pages: their DEKs rewrapped and items failed, by reason."""
    made = _instruments()
    attributes = _key_attributes(key_ref, shard)
    if rewrapped:
        made[DEKS_REWRAPPED.name].add(rewrapped, attributes)
    for outcome, counts in (("unreadable", unreadable), ("failed", failed)):
        for reason, count in counts.items():
            if count:
                labels = {**attributes, ATTR_OUTCOME: outcome, ATTR_REASON: reason[:64]}
                made[ITEMS_FAILED.name].add(count, labels)


def job_progress(job_id: str, key_ref: str, shard: str, settled: int) -> None:
    """A job's settled DEKs so far (a gauge: the newest value per job wins)."""
    attributes = {**_key_attributes(key_ref, shard), ATTR_JOB_ID: job_id}
    _instruments()[JOB_PROGRESS.name].set(settled, attributes)


def vault_operation(vault: str) -> None:
    """One Key Vault request sent by a rewrap (a retry is another)."""
    _instruments()[VAULT_OPERATIONS.name].add(1, {ATTR_VAULT: vault})


def vault_throttled(vault: str) -> None:
    """One Key Vault answer 429."""
    _instruments()[VAULT_THROTTLED.name].add(1, {ATTR_VAULT: vault})


def dependent_verdict_changed(kind: str, verdict: str) -> None:
    """A key-dependent resource's verdict changed (``kind``: ``face``; ``verdict``: new one)."""
    _instruments()[VERDICT_CHANGES.name].add(1, {ATTR_KIND: kind, ATTR_VERDICT: verdict})


def event_rejected(reason: str) -> None:
    """An Event Grid delivery was rejected for ``reason`` (one of keyward's reason codes)."""
    _instruments()[EVENTS_REJECTED.name].add(1, {ATTR_REASON: reason[:64]})
