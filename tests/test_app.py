"""The function app indexes, and host.json says what Azure Functions expects."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def test_app_indexes_every_blueprint(app_functions: dict[str, Any]) -> None:
    triggers = {
        name: fn.get_trigger().get_dict_repr()["type"] for name, fn in app_functions.items()
    }
    assert triggers == {
        "on_key_vault_event": "eventGridTrigger",
        "rewrap_worker": "queueTrigger",
        "sweep": "timerTrigger",
        "dependents_sweep": "timerTrigger",
        "admin_status": "httpTrigger",
        "admin_rewrap": "httpTrigger",
        "admin_retire": "httpTrigger",
        "admin_verdict": "httpTrigger",
        "admin_operation": "httpTrigger",
        "admin_migrate": "httpTrigger",
        "admin_rotate_keks": "httpTrigger",
        "admin_replay_dead_letters": "httpTrigger",
        "health": "httpTrigger",
        "retention": "timerTrigger",
    }


def test_bindings_read_their_names_from_app_settings(app_functions: dict[str, Any]) -> None:
    queue = app_functions["rewrap_worker"].get_trigger().get_dict_repr()
    assert queue["queueName"] == "%KEYWARD_JOB_QUEUE%"
    assert queue["connection"] == "AzureWebJobsStorage"
    timer = app_functions["sweep"].get_trigger().get_dict_repr()
    assert timer["schedule"] == "%KEYWARD_SWEEP_SCHEDULE%"
    # The admin routes are anonymous to the host: keyward checks an Entra ID token on every
    # one itself (docs/admin-auth.md); a function key would prove no identity.
    for name in ("admin_status", "admin_rewrap", "admin_retire", "admin_verdict",
                 "admin_operation", "admin_migrate", "admin_rotate_keks",
                 "admin_replay_dead_letters"):  # fmt: skip
        http = app_functions[name].get_trigger().get_dict_repr()
        assert str(http["authLevel"]).lower().endswith("anonymous")
    route = app_functions["admin_operation"].get_trigger().get_dict_repr()
    assert route["route"] == "operations/{operation_id}"
    assert [str(getattr(m, "value", m)) for m in route["methods"]] == ["GET"]


def test_both_sweeps_are_timers_of_their_own_with_their_own_schedules(
    app_functions: dict[str, Any],
) -> None:
    """Issue 12: the rewrap reconciliation and the revocation (Face) sweep are two functions,
    each on its own setting; the defaults fire on different seconds, so they never start
    together and neither waits for the other."""
    from shared.settings import SPEC_BY_NAME, Ncrontab

    schedules = {}
    for name, setting in (
        ("sweep", "KEYWARD_SWEEP_SCHEDULE"),
        ("dependents_sweep", "KEYWARD_DEPENDENTS_SWEEP_SCHEDULE"),
    ):
        timer = app_functions[name].get_trigger().get_dict_repr()
        assert timer["type"] == "timerTrigger"
        assert timer["schedule"] == f"%{setting}%"
        assert timer["useMonitor"] is True
        default = SPEC_BY_NAME[setting].default
        assert default is not None
        schedules[name] = Ncrontab.parse(default)
    reconcile = datetime(2026, 1, 1, tzinfo=UTC)
    for _ in range(24):
        reconcile = schedules["sweep"].next_after(reconcile)
        revoke = schedules["dependents_sweep"].next_after(reconcile)
        assert (revoke - reconcile).total_seconds() == 30, "30 s after each reconciliation"
        assert schedules["sweep"].next_after(revoke) - reconcile == timedelta(minutes=5)


def test_the_local_host_runs_both_timers_on_their_own_schedules() -> None:
    """``devtools/localhost`` finds timers in the app's function metadata: both sweeps, each
    resolving its own setting (as the real host does), from the example settings."""
    from devtools.localhost import bindings
    from shared.settings import Ncrontab
    from tests.conftest import indexed_functions

    values = json.loads((ROOT / "local.settings.example.json").read_text())["Values"]
    timers = {
        name: bindings.resolve_setting_reference(str(spec.binding["schedule"]), values)
        for name, spec in bindings.discover(indexed_functions().values()).items()
        if spec.trigger_type == bindings.TIMER_TRIGGER
    }
    assert timers == {
        "sweep": "0 */5 * * * *",
        "dependents_sweep": "30 */5 * * * *",
        "retention": "0 30 3 * * *",
    }
    for expression in timers.values():
        Ncrontab.parse(expression)


def test_retention_is_a_timer_of_its_own(app_functions: dict[str, Any]) -> None:
    """Issue 12: retention runs on its own schedule (daily by default), never on a sweep's."""
    from shared.settings import SPEC_BY_NAME, Ncrontab

    timer = app_functions["retention"].get_trigger().get_dict_repr()
    assert timer["schedule"] == "%KEYWARD_RETENTION_SCHEDULE%"
    assert timer["useMonitor"] is True
    default = SPEC_BY_NAME["KEYWARD_RETENTION_SCHEDULE"].default
    assert default is not None
    first = Ncrontab.parse(default).next_after(datetime(2026, 1, 1, tzinfo=UTC))
    second = Ncrontab.parse(default).next_after(first)
    assert second - first == timedelta(days=1)


def test_worker_dequeue_limit_matches_host_json() -> None:
    """host.json's ``maxDequeueCount`` has one Python twin, ``MAX_DEQUEUE_COUNT``, which the
    function passes on; neither the service nor the composition root has a default of its own."""
    import inspect

    from functions.rewrap_worker import MAX_DEQUEUE_COUNT
    from shared.composition import AppContext
    from shared.services.rewrap_worker import RewrapWorkerService

    host = json.loads((ROOT / "host.json").read_text())
    assert host["extensions"]["queues"]["maxDequeueCount"] == MAX_DEQUEUE_COUNT
    service = inspect.signature(RewrapWorkerService).parameters["max_dequeue_count"]
    assert service.default is inspect.Parameter.empty
    context = inspect.signature(AppContext.rewrap_worker).parameters["max_dequeue_count"]
    assert context.default is inspect.Parameter.empty


def test_function_timeout_matches_host_json() -> None:
    """host.json's ``functionTimeout`` has one Python twin, ``FUNCTION_TIMEOUT_SECONDS``, which
    bounds ``KEYWARD_REWRAP_SLICE_SECONDS`` (plus its safety margin) when settings are read."""
    from shared.rewrap import (
        DEFAULT_SLICE_SECONDS,
        FUNCTION_TIMEOUT_SECONDS,
        MAX_SLICE_SECONDS,
        SLICE_SAFETY_MARGIN_SECONDS,
    )

    host = json.loads((ROOT / "host.json").read_text())
    hours, minutes, seconds = (int(part) for part in host["functionTimeout"].split(":"))
    assert hours * 3600 + minutes * 60 + seconds == FUNCTION_TIMEOUT_SECONDS
    assert MAX_SLICE_SECONDS + SLICE_SAFETY_MARGIN_SECONDS <= FUNCTION_TIMEOUT_SECONDS
    assert DEFAULT_SLICE_SECONDS <= MAX_SLICE_SECONDS


def test_health_function_answers_through_the_real_request_type(
    app_functions: dict[str, Any],
) -> None:
    import azure.functions as func

    health = app_functions["health"]
    request = func.HttpRequest(method="GET", url="/api/health", body=b"")
    response = health.get_user_function()(request)
    assert response.status_code == 200
    assert json.loads(response.get_body()) == {"status": "ok", "app": "keyward"}


def test_host_json_matches_the_functions_v4_contract() -> None:
    host = json.loads((ROOT / "host.json").read_text())
    assert host["version"] == "2.0"
    bundle = host["extensionBundle"]
    assert bundle["id"] == "Microsoft.Azure.Functions.ExtensionBundle"
    assert bundle["version"] == "[4.*, 5.0.0)"
    sampling = host["logging"]["applicationInsights"]["samplingSettings"]
    assert "Request" in sampling["excludedTypes"].split(";")
    queues = host["extensions"]["queues"]
    assert queues["maxDequeueCount"] >= 1


def test_an_instance_runs_at_most_two_queue_messages_at_once() -> None:
    """One budget per vault (docs/architecture.md): more slices of one vault on an instance
    add members and memory, not throughput; the queue extension runs at most
    ``batchSize + newBatchThreshold`` messages in parallel, so a second message (a follow-up,
    another vault's shard) need not wait behind a slice, and no more."""
    queues = json.loads((ROOT / "host.json").read_text())["extensions"]["queues"]
    assert queues["batchSize"] + queues["newBatchThreshold"] == 2
    assert queues["newBatchThreshold"] >= 1  # fetch the next message while a slice runs


def test_function_app_only_registers_blueprints() -> None:
    source = (ROOT / "function_app.py").read_text()
    assert "register_functions" in source
    assert "@app." not in source, "functions belong in blueprints under functions/"


def test_requirements_are_pinned() -> None:
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            assert "==" in line, f"{line!r} is not pinned with =="
