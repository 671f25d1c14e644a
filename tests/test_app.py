"""The function app indexes, and host.json says what Azure Functions expects."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def test_app_indexes_every_blueprint(app_functions: dict[str, Any]) -> None:
    assert "health" in app_functions


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


def test_function_app_only_registers_blueprints() -> None:
    source = (ROOT / "function_app.py").read_text()
    assert "register_functions" in source
    assert "@app." not in source, "functions belong in blueprints under functions/"


def test_requirements_are_pinned() -> None:
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            assert "==" in line, f"{line!r} is not pinned with =="
