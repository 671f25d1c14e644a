"""Issue 14, "Done when": a rotation driven end to end through the local host, recorded by an
in-memory OpenTelemetry SDK, shows

* one trace from the Event Grid delivery to every worker run it caused: the event's span is
  the parent of the worker spans of the shard messages it sent (their ``traceparent``), and
  the sweep's span the parent of the worker span of the job it queued for a missed rotation;
* metrics equal to what the stores hold: DEKs rewrapped equals the DEKs the DEK store counts
  under the new version, vault operations and 429s equal the jobs' own counters, a job's
  progress gauge its settled count, rejected events the ledger's rejections;
* no key material anywhere: a canary DEK of known bytes (and its wrapped forms, before and
  after the rewrap) appears in no span name, attribute, event or link, no metric attribute,
  no log record.
"""

from __future__ import annotations

import asyncio
import base64
import time
import uuid
from collections.abc import Iterable
from typing import Any

import aiohttp
import pytest
from opentelemetry.sdk.trace import ReadableSpan

from devtools.localhost.telemetry import InMemoryTelemetry, in_memory_telemetry
from devtools.seed import seed_deks
from shared.adapters.dek_table import TableDekStore
from shared.composition import context_for_current_loop
from shared.crypto import DataKey, VaultAllowList, seal
from shared.rewrap import JobState
from shared.stores import NewDek
from tests.e2e.conftest import Stack, call
from tests.e2e.test_rotation_flow import EVENT_TYPES

pytestmark = [pytest.mark.azurite, pytest.mark.emulator]

DEKS = 24
#: The canary DEK: known bytes that must never leave the process in telemetry.
CANARY = bytes.fromhex("c0ffee00" * 8)
#: Vault requests of a run's target proof (``shared.rewrap._target_proof.confirm_target``).
PROOF_CALLS = 3


def _forms(secret: bytes) -> set[str]:
    """Every way a value could leak as text: hex, base64, base64url, bytes repr."""
    b64 = base64.b64encode(secret).decode()
    url = base64.urlsafe_b64encode(secret).decode()
    return {
        secret.hex(),
        secret.hex().upper(),
        b64,
        b64.rstrip("="),
        url,
        url.rstrip("="),
        repr(secret)[2:-1][:64],
    }


async def _seed(stack: Stack, key_name: str, *, canary: bool) -> tuple[TableDekStore, str, bytes]:
    from devtools.keyvault_sync import KeyVaultAdapter

    key = await call(stack.key_client.create_rsa_key, key_name, size=2048)
    allow = VaultAllowList.parse(stack.settings["KEYWARD_VAULT_ALLOWLIST"])
    vault_keys = KeyVaultAdapter(stack.vault.credential(), allow, ca_bundle=stack.emulator.ca_path)
    store = TableDekStore.from_connection_string(stack.azurite.connection_string, stack.dek_table)
    await store.create_table()
    wrapper = await call(vault_keys.wrapper, key.id)
    await seed_deks(store, wrapper, DEKS, partitions=2, prefix=key_name)
    wrapped = b""
    if canary:
        dek = DataKey(CANARY)
        wrapped = await call(wrapper.wrap, dek)
        sealed = seal(dek, b"canary record", dek_id="canary/one")
        await store.insert_batch(
            [NewDek("canary", "one", wrapper.key_id, wrapper.algorithm, wrapped, dek.kcv, sealed)]
        )
    await call(vault_keys.close)
    return store, key.id.rsplit("/", 1)[0], wrapped


async def _at(store: TableDekStore, key_ref: str, version: str, count: int) -> int:
    """Wait until ``count`` DEKs of ``key_ref`` are under ``version``; the store's count."""
    deadline = time.monotonic() + 90
    counts: dict[str, int] = {}
    while time.monotonic() < deadline:
        counts = {
            c.key_id.rsplit("/", 1)[1]: c.current for c in await store.version_counts(key_ref)
        }
        if counts.get(version) == count and sum(counts.values()) == count:
            return counts[version]
        await asyncio.sleep(0.25)
    raise AssertionError(f"DEKs did not all reach {version}: {counts}")


async def _ended_jobs(stack: Stack, key_ref: str) -> list[JobState]:
    context = await context_for_current_loop()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        jobs = [
            j
            for j in await context.job_store(f"table:{stack.dek_table}").list_jobs()
            if j.key_ref == key_ref
        ]
        if jobs and all(j.status.ended for j in jobs):
            await asyncio.sleep(0.3)  # the worker's span ends right after its last write
            return jobs
        await asyncio.sleep(0.25)
    raise AssertionError(f"the jobs of {key_ref} did not end")


def _spans(telemetry: InMemoryTelemetry, function: str, **attributes: Any) -> list[ReadableSpan]:
    return [
        s
        for s in telemetry.spans()
        if s.name == function
        and all((s.attributes or {}).get(k) == v for k, v in attributes.items())
    ]


def _texts(telemetry: InMemoryTelemetry) -> Iterable[str]:
    """Everything telemetry would export, as text."""
    for span in telemetry.spans():
        yield span.name
        yield from (f"{k}={v}" for k, v in (span.attributes or {}).items())
        for event in span.events:
            yield event.name
            yield from (f"{k}={v}" for k, v in (event.attributes or {}).items())
        for link in span.links:
            yield from (f"{k}={v}" for k, v in (link.attributes or {}).items())
    for point in telemetry.points():
        yield point.name
        yield from (f"{k}={v}" for k, v in point.attributes.items())
    for record in telemetry.log_records():
        yield record.getMessage()
        yield repr(record.args)
        yield repr({k: v for k, v in vars(record).items() if k not in ("msg", "args")})


async def test_a_rotation_is_one_trace_its_metrics_match_the_store_and_no_key_leaks(
    stack: Stack,
) -> None:
    telemetry = in_memory_telemetry()
    telemetry.clear()
    vault = stack.vault.url.split("://", 1)[1].lower()  # the vault's host, as the board names it
    with telemetry.capturing_logs():
        # A rotation no event tells of (no subscription yet): the sweep must find it.
        missed_store, missed_ref, _ = await _seed(stack, "ledger", canary=False)
        missed = (await call(stack.key_client.rotate_key, "ledger")).properties.version
        # A rotation Event Grid delivers: the event's span starts the trace.
        store, key_ref, wrapped_before = await _seed(stack, "orders", canary=True)
        from devtools.emulator.eventgrid_client import EventGridControl

        grid = EventGridControl(stack.emulator.url, stack.emulator.ca_path)
        await call(
            grid.subscribe,
            f"keyward-{uuid.uuid4().hex[:8]}",
            topic=stack.vault.arm_id,
            endpoint=stack.host.event_grid_webhook_url("on_key_vault_event"),
            included_event_types=EVENT_TYPES,
        )
        rotated = (await call(stack.key_client.rotate_key, "orders")).properties.version
        under_new = await _at(store, key_ref, rotated, DEKS + 1)
        jobs = await _ended_jobs(stack, key_ref)

        async with aiohttp.ClientSession() as session:
            swept = await session.post(
                f"{stack.host.base_url}/admin/functions/sweep",
                json={},
                headers={"x-functions-key": stack.host.keys.master},
            )
            assert swept.status == 202
            swept_under_new = await _at(missed_store, missed_ref, missed, DEKS)
            swept_jobs = await _ended_jobs(stack, missed_ref)
            # An event for a key the vault lacks: acknowledged, rejected, counted (the counter
            # is the process's: only its change counts).
            rejected_before = telemetry.total(
                "keyward.events.rejected", **{"keyward.reason": "KEY_NOT_FOUND"}
            )
            ghost = uuid.uuid4().hex
            event = {
                "id": "ghost-1", "topic": stack.vault.arm_id, "subject": "ghost",
                "eventType": "Microsoft.KeyVault.KeyNewVersionCreated",
                "eventTime": "2026-11-29T03:00:00Z",
                "data": {
                    "Id": f"{stack.vault.url}/keys/ghost/{ghost}", "VaultName": stack.vault.name,
                    "ObjectType": "Key", "ObjectName": "ghost", "Version": ghost,
                    "NBF": None, "EXP": None,
                },
                "dataVersion": "1", "metadataVersion": "1",
            }  # fmt: skip
            response = await session.post(
                stack.host.event_grid_webhook_url("on_key_vault_event"),
                json=[event],
                headers={"aeg-event-type": "Notification"},
            )
            assert response.status == 200
        canary_row = await store.get("canary/one")
        assert canary_row is not None
        wrapped_after = canary_row.record.wrapped
        await store.close()
        await missed_store.close()

    # Traces: event -> shard messages -> worker runs; sweep -> its message -> worker run.
    events = [
        s
        for s in _spans(telemetry, "on_key_vault_event")
        if (s.attributes or {}).get("keyward.event_id") not in (None, "ghost-1")
    ]
    assert events, [s.name for s in telemetry.spans()]
    workers = _spans(telemetry, "rewrap_worker", **{"keyward.message_kind": "rewrap"})
    for job in jobs:
        runs = [s for s in workers if (s.attributes or {}).get("keyward.job_id") == job.job_id]
        assert runs, f"no worker span for job {job.job_id}"
        first = min(runs, key=lambda s: s.start_time or 0)
        assert first.parent is not None
        assert first.parent.span_id in {e.context.span_id for e in events if e.context}
        assert first.context is not None
        assert first.context.trace_id == first.parent.trace_id
        # The host's own context of the run is kept as a link (another trace).
        assert first.links
        assert first.links[0].context.trace_id != first.context.trace_id
        # Every later slice of the job continues the same trace.
        assert {s.context.trace_id for s in runs if s.context} == {first.context.trace_id}
    # No orphan: every worker run (shard slices, the events' key-dependent follow-ups)
    # continues the span that sent its message, recorded in this run.
    recorded = {s.context.span_id for s in telemetry.spans() if s.context}
    every_run = _spans(telemetry, "rewrap_worker")
    assert {(s.attributes or {}).get("keyward.message_kind") for s in every_run} >= {"rewrap"}
    for run in every_run:
        assert run.parent is not None, run.attributes
        assert run.parent.span_id in recorded, run.attributes
    for event_span in events:
        assert event_span.parent is not None, "the host's trace context is the event's parent"
        assert event_span.kind.name == "CONSUMER"
    (sweep,) = _spans(telemetry, "sweep")
    assert sweep.context is not None
    for job in swept_jobs:
        runs = [s for s in workers if (s.attributes or {}).get("keyward.job_id") == job.job_id]
        assert runs
        assert min(runs, key=lambda s: s.start_time or 0).parent is not None
        assert {s.context.trace_id for s in runs if s.context} == {sweep.context.trace_id}

    # Metrics against the stores' real counts.
    rewrapped = telemetry.total("keyward.rewrap.deks_rewrapped", **{"keyward.vault": vault})
    assert rewrapped == under_new + swept_under_new == 2 * DEKS + 1
    for job in [*jobs, *swept_jobs]:
        key = job.key_ref.rsplit("/", 1)[1]
        assert (
            # Counters are cumulative for the process: this run's vault (host:port) makes
            # the key name this run's.
            telemetry.total(
                "keyward.rewrap.deks_rewrapped", **{"keyward.vault": vault, "keyward.key": key}
            )
            == job.counters.rewrapped
        )
        assert (
            telemetry.total("keyward.job.deks_settled", **{"keyward.job_id": job.job_id})
            == job.counters.settled()
        )
    all_jobs = [*jobs, *swept_jobs]
    assert telemetry.total("keyward.rewrap.items_failed", **{"keyward.vault": vault}) == sum(
        j.counters.failed_total + j.counters.unreadable_total for j in all_jobs
    )
    operations = telemetry.total("keyward.vault.operations", **{"keyward.vault": vault})
    throttled = telemetry.total("keyward.vault.throttled", **{"keyward.vault": vault})
    # The jobs' own unwraps, plus the target proof each run makes before it claims its job
    # (PROOF_CALLS requests: the version's attributes, a wrap, an unwrap), which the job's
    # counters leave out; a run that finds its job ended makes none.
    job_operations = sum(j.counters.vault_operations for j in all_jobs)
    runs = len([s for s in workers if (s.attributes or {}).get("keyward.job_id")])
    assert job_operations >= 2 * DEKS + 1
    proofs, rest = divmod(operations - job_operations, PROOF_CALLS)
    assert rest == 0, (operations, job_operations)
    assert len(all_jobs) <= proofs <= runs, (operations, job_operations, runs)
    assert throttled == sum(j.counters.throttled for j in all_jobs) == 0
    context = await context_for_current_loop()
    rejections = [r for r in await context.ledger.recent_rejections() if r["event_id"] == "ghost-1"]
    assert len(rejections) == 1
    rejected = telemetry.total("keyward.events.rejected", **{"keyward.reason": "KEY_NOT_FOUND"})
    assert rejected - rejected_before == len(rejections) == 1

    # No key material: the canary DEK, its wrapped forms before and after the rewrap.
    assert wrapped_before
    assert wrapped_after != wrapped_before
    forbidden = _forms(CANARY) | _forms(wrapped_before) | _forms(wrapped_after)
    texts = list(_texts(telemetry))
    assert len(texts) > 100, "the run recorded spans, points and log records"
    leaks = [t for t in texts for secret in forbidden if secret in t]
    assert not leaks, leaks[:3]
    # The same search finds a planted leak of each form of the canary among those texts.
    for form in _forms(CANARY):
        planted = [*texts, f"dek={form}"]
        assert {t for t in planted for secret in forbidden if secret in t} == {f"dek={form}"}
