"""Admin HTTP API (auth level function): ``GET /api/status``, ``POST /api/rewrap``.

Errors are JSON ``{"error": {"code", "message"}}`` with a status that says whose fault it
is. Responses carry ids, versions, counts and reasons only, never key material.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import azure.functions as func

from shared.composition import context_for_current_loop
from shared.errors import (
    AccessDeniedError,
    ConfigurationError,
    InvalidInputError,
    KeyNotFoundError,
    KeywardError,
    RetirementBlockedError,
    ServiceError,
    VaultNotAllowedError,
)
from shared.rewrap import RewrapTargetError

bp = func.Blueprint()
_log = logging.getLogger("keyward.functions.admin")


def _json(body: Any, status: int = 200) -> func.HttpResponse:
    return func.HttpResponse(
        json.dumps(body, sort_keys=True, default=str),
        status_code=status,
        mimetype="application/json",
    )


def _error(status: int, code: str, message: str) -> func.HttpResponse:
    return _json({"error": {"code": code, "message": message}}, status)


def _for_exception(error: KeywardError) -> func.HttpResponse:
    """Map keyward's error hierarchy onto HTTP; messages never hold key material."""
    if isinstance(error, VaultNotAllowedError):
        return _error(403, "VaultNotAllowed", str(error))
    if isinstance(error, RetirementBlockedError):
        return _json(
            {
                "error": {"code": error.code_name, "message": str(error)},
                "blockers": error.blockers,
            },
            409,
        )
    if isinstance(error, RewrapTargetError):
        return _error(409, "RewrapTargetRefused", str(error))
    if isinstance(error, InvalidInputError):
        return _error(400, "BadRequest", str(error))
    if isinstance(error, KeyNotFoundError):
        return _error(404, "KeyNotFound", str(error))
    if isinstance(error, AccessDeniedError):
        return _error(502, "VaultAccessDenied", str(error))
    if isinstance(error, ConfigurationError):
        return _error(500, "Misconfigured", str(error))
    if isinstance(error, ServiceError) and error.transient:
        return _error(503, "Unavailable", str(error))
    return _error(502, "UpstreamRefused", str(error))


@bp.function_name("admin_status")
@bp.route(route="status", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
async def admin_status(req: func.HttpRequest) -> func.HttpResponse:
    try:
        context = await context_for_current_loop()
        return _json(await context.admin().status())
    except KeywardError as error:
        return _for_exception(error)


@bp.function_name("admin_rewrap")
@bp.route(route="rewrap", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
async def admin_rewrap(req: func.HttpRequest) -> func.HttpResponse:
    try:
        body = req.get_json()
    except ValueError:
        return _error(400, "BadRequest", "body must be JSON: {key, version?, dry_run?, restart?}")
    if not isinstance(body, dict) or not isinstance(body.get("key"), str):
        return _error(400, "BadRequest", "'key' (a Key Vault key id) is required")
    version = body.get("version")
    dry_run = body.get("dry_run", False)
    restart = body.get("restart", False)
    if (version is not None and not isinstance(version, str)) or not isinstance(dry_run, bool):
        return _error(400, "BadRequest", "'version' must be a string and 'dry_run' a boolean")
    if not isinstance(restart, bool) or (restart and dry_run):
        return _error(400, "BadRequest", "'restart' must be a boolean, and not with 'dry_run'")
    try:
        context = await context_for_current_loop()
        result = await context.admin().rewrap(
            body["key"], version=version, dry_run=dry_run, restart=restart
        )
    except KeywardError as error:
        return _for_exception(error)
    _log.info("admin rewrap key=%s dry_run=%s restart=%s", result.get("key"), dry_run, restart)
    return _json(result, 200 if dry_run else 202)


@bp.function_name("admin_retire")
@bp.route(route="retire", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
async def admin_retire(req: func.HttpRequest) -> func.HttpResponse:
    try:
        body = req.get_json()
    except ValueError:
        return _error(400, "BadRequest", "body must be JSON: {key, version?}")
    if not isinstance(body, dict) or not isinstance(body.get("key"), str):
        return _error(400, "BadRequest", "'key' (a Key Vault key id) is required")
    version = body.get("version")
    if version is not None and not isinstance(version, str):
        return _error(400, "BadRequest", "'version' must be a string")
    try:
        context = await context_for_current_loop()
        result = await context.admin().retire(body["key"], version=version)
    except KeywardError as error:
        return _for_exception(error)
    _log.info("admin retire key=%s version=%s", result["key"], result["version"])
    return _json(result)
