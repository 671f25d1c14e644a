"""shared.telemetry: every metric is declared once, recorded with its declared attributes
only, and the span helper picks the parent the docs say (message, else host; host as link)."""

from __future__ import annotations

import uuid

from opentelemetry.trace import SpanKind

from devtools.localhost.telemetry import in_memory_telemetry
from shared import telemetry
from shared.telemetry import METRICS, invocation_span, is_traceparent, vault_of
from shared.telemetry._names import key_name_of

HOST = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
MESSAGE = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def _key_ref() -> str:
    """A key of a vault no other test names (metrics are cumulative for the process)."""
    return f"https://kv-{uuid.uuid4().hex[:8]}.vault.azure.net/keys/orders"


def test_metric_names_are_unique_keyward_names_with_units_and_attributes() -> None:
    names = [spec.name for spec in METRICS]
    assert len(names) == len(set(names)) == 7
    for spec in METRICS:
        assert spec.name.startswith("keyward.")
        assert spec.kind in ("counter", "gauge")
        assert spec.unit.startswith("{")
        assert spec.attributes
        assert all(a.startswith(("keyward.", "faas.")) for a in spec.attributes)


def test_each_recording_call_records_its_metric_with_its_declared_attributes_only() -> None:
    memory = in_memory_telemetry()
    key_ref = _key_ref()
    vault = vault_of(key_ref)
    job = f"rewrap-{uuid.uuid4().hex}"
    telemetry.page_committed(key_ref, "table:deks", 3, {"kcv_mismatch": 1}, {"integrity": 2})
    telemetry.page_committed(key_ref, "table:deks", 4, {}, {})
    telemetry.job_progress(job, key_ref, "table:deks", 5)
    telemetry.job_progress(job, key_ref, "table:deks", 10)
    for _ in range(6):
        telemetry.vault_operation(vault)
    telemetry.vault_throttled(vault)
    kind = f"kind{uuid.uuid4().hex[:6]}"
    telemetry.dependent_verdict_changed(kind, "REVOKED")
    reason = f"REASON_{uuid.uuid4().hex[:6]}"
    telemetry.event_rejected(reason)

    assert memory.total("keyward.rewrap.deks_rewrapped", **{"keyward.vault": vault}) == 7
    failed = {"keyward.vault": vault, "keyward.shard": "table:deks"}
    assert memory.total("keyward.rewrap.items_failed", **failed) == 3
    assert (
        memory.total("keyward.rewrap.items_failed", **failed, **{"keyward.reason": "integrity"})
        == 2
    )
    assert memory.total("keyward.job.deks_settled", **{"keyward.job_id": job}) == 10
    assert memory.total("keyward.vault.operations", **{"keyward.vault": vault}) == 6
    assert memory.total("keyward.vault.throttled", **{"keyward.vault": vault}) == 1
    assert memory.total("keyward.dependents.verdict_changes", **{"keyward.kind": kind}) == 1
    assert memory.total("keyward.events.rejected", **{"keyward.reason": reason}) == 1
    declared = {spec.name: set(spec.attributes) for spec in METRICS}
    mine = [p for p in memory.points() if vault in p.attributes.values() or job in str(p)]
    assert {p.name for p in mine} >= {
        "keyward.rewrap.deks_rewrapped",
        "keyward.rewrap.items_failed",
        "keyward.job.deks_settled",
        "keyward.vault.operations",
        "keyward.vault.throttled",
    }
    for point in mine:
        assert set(point.attributes) <= declared[point.name], point


def test_a_key_is_named_by_its_vault_host_and_key_name_never_by_anything_else() -> None:
    assert vault_of("https://contoso-kv.vault.azure.net/keys/orders/" + "a" * 32) == (
        "contoso-kv.vault.azure.net"
    )
    assert vault_of("https://127.0.0.1:8443/keys/orders") == "127.0.0.1:8443"
    assert key_name_of("https://contoso-kv.vault.azure.net/keys/orders/" + "a" * 32) == "orders"
    for junk in ("", "not a url", "http://x/keys/a", "c0ffee" * 8, "https://["):
        assert vault_of(junk) == "unknown"
    assert key_name_of("https://contoso-kv.vault.azure.net/secrets/s") == "unknown"


def test_a_message_context_is_the_parent_and_the_host_context_a_link() -> None:
    memory = in_memory_telemetry()
    memory.clear()
    with invocation_span(
        "rewrap_worker", trigger="pubsub", message_traceparent=MESSAGE, host_traceparent=HOST
    ):
        pass
    (span,) = memory.spans()
    assert span.parent is not None
    assert (span.parent.trace_id, span.parent.span_id) == (
        int(MESSAGE.split("-")[1], 16),
        int(MESSAGE.split("-")[2], 16),
    )
    assert [link.context.span_id for link in span.links] == [int(HOST.split("-")[2], 16)]
    assert span.kind is SpanKind.CONSUMER
    assert span.attributes is not None
    assert span.attributes["keyward.function"] == "rewrap_worker"


def test_without_a_message_context_the_host_context_is_the_parent() -> None:
    memory = in_memory_telemetry()
    memory.clear()
    with invocation_span(
        "sweep", trigger="timer", message_traceparent="junk", host_traceparent=HOST
    ):
        pass
    (span,) = memory.spans()
    assert span.parent is not None
    assert span.parent.span_id == int(HOST.split("-")[2], 16)
    assert not span.links
    assert span.kind is SpanKind.INTERNAL


def test_an_exception_ends_the_span_as_an_error_and_propagates() -> None:
    memory = in_memory_telemetry()
    memory.clear()
    try:
        with invocation_span("sweep", trigger="timer"):
            raise RuntimeError("boom")
    except RuntimeError:
        pass
    (span,) = memory.spans()
    assert span.parent is None
    assert span.status.status_code.name == "ERROR"


def test_traceparent_validation() -> None:
    assert is_traceparent(HOST)
    for bad in (None, 7, "", HOST.upper(), "01" + HOST[2:], "00-" + "0" * 32 + HOST[35:],
                HOST[:-3], HOST + "-x"):  # fmt: skip
        assert not is_traceparent(bad), bad
    with invocation_span("x", trigger="timer", host_traceparent=HOST):
        assert telemetry.current_traceparent() is not None


def test_the_vocabulary_imports_only_the_opentelemetry_api() -> None:
    """Every layer may record because ``shared.telemetry`` needs nothing but the API: not the
    SDK (the composition root's choice), not ``azure`` (import-linter's pure-domain contract)."""
    import ast
    from pathlib import Path

    package = Path(__file__).resolve().parents[2] / "shared" / "telemetry"
    imported: set[str] = set()
    for path in package.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                imported.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module:
                imported.add(node.module)
    third_party = {name for name in imported if not name.startswith(("shared", "__future__"))}
    assert {name.split(".")[0] for name in third_party} - {
        "collections", "contextlib", "dataclasses", "re", "threading", "typing", "urllib"
    } == {"opentelemetry"}  # fmt: skip
    assert not [name for name in third_party if name.startswith("opentelemetry.sdk")]
