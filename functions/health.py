"""A liveness endpoint: proves the app indexed and started, touches no Azure service."""

from __future__ import annotations

import json

import azure.functions as func

bp = func.Blueprint()


@bp.function_name("health")
@bp.route(route="health", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def health(req: func.HttpRequest) -> func.HttpResponse:
    body = json.dumps({"status": "ok", "app": "keyward"})
    return func.HttpResponse(body, status_code=200, mimetype="application/json")
