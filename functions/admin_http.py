"""Admin HTTP API (auth level function): status, rewrap, and the operations.

``GET /api/status`` is one bounded page. ``POST /api/rewrap`` queues a rewrap (``202``).
Whole-store work answers ``202`` with ``Location: /api/operations/<id>`` and runs in the
background (the asynchronous request-reply pattern): ``POST /api/rewrap {"dry_run": true}``,
``POST /api/verdict {"key"}``, ``POST /api/retire {"key", "version"?}``, a store's jobs
``POST /api/migrate {"store", "key", "to"}`` and ``POST /api/rotate-keks {"store", "key",
"partition"?, "older_than_days"?}`` (``409 StoreJobBusy`` while the store's job runs:
docs/store-jobs.md); input is checked
first, and bad input gets its error at once with nothing recorded. ``GET
/api/operations/<id>`` reports one (``Retry-After`` while it runs).

Errors are JSON ``{"error": {"code", "message"}}`` with a status that says whose fault it
is (``shared.composition.error_answer``, the one mapping, which operations use too).
Responses carry ids, versions, counts and reasons only, never key material.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import azure.functions as func

from shared.composition import context_for_current_loop, error_answer
from shared.errors import KeywardError

bp = func.Blueprint()
_log = logging.getLogger("keyward.functions.admin")
#: Seconds a client should wait before polling an unfinished operation again.
POLL_AFTER_SECONDS = 2


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> func.HttpResponse:
    return func.HttpResponse(
        json.dumps(body, sort_keys=True, default=str),
        status_code=status,
        mimetype="application/json",
        headers=headers,
    )


def _error(status: int, code: str, message: str) -> func.HttpResponse:
    return _json({"error": {"code": code, "message": message}}, status)


def _for_exception(error: KeywardError) -> func.HttpResponse:
    status, body = error_answer(error)
    return _json(body, status)


def _accepted(body: dict[str, Any]) -> func.HttpResponse:
    """``202``, the status URL in ``Location`` and in the body."""
    return _json(body, 202, {"Location": str(body["status_url"])})


def _body(req: func.HttpRequest, shape: str) -> dict[str, Any] | func.HttpResponse:
    try:
        body = req.get_json()
    except ValueError:
        return _error(400, "BadRequest", f"body must be JSON: {shape}")
    if not isinstance(body, dict) or not isinstance(body.get("key"), str):
        return _error(400, "BadRequest", "'key' (a Key Vault key id) is required")
    return body


def _limit(text: str | None) -> int | None:
    """Raises: ValueError: not a decimal integer."""
    if text is None:
        return None
    if not text.isdigit() or len(text) > 6:
        raise ValueError(text)
    return int(text)


@bp.function_name("admin_status")
@bp.route(route="status", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
async def admin_status(req: func.HttpRequest) -> func.HttpResponse:
    try:
        limit = _limit(req.params.get("limit"))
    except ValueError:
        return _error(400, "BadRequest", "'limit' must be an integer 1..200")
    try:
        context = await context_for_current_loop()
        page = await context.admin().status(
            limit=limit, continuation=req.params.get("continuation")
        )
    except KeywardError as error:
        return _for_exception(error)
    return _json(page)


@bp.function_name("admin_rewrap")
@bp.route(route="rewrap", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
async def admin_rewrap(req: func.HttpRequest) -> func.HttpResponse:
    body = _body(req, "{key, version?, dry_run?, restart?}")
    if isinstance(body, func.HttpResponse):
        return body
    version = body.get("version")
    dry_run = body.get("dry_run", False)
    restart = body.get("restart", False)
    if (version is not None and not isinstance(version, str)) or not isinstance(dry_run, bool):
        return _error(400, "BadRequest", "'version' must be a string and 'dry_run' a boolean")
    if not isinstance(restart, bool) or (restart and dry_run):
        return _error(400, "BadRequest", "'restart' must be a boolean, and not with 'dry_run'")
    try:
        admin = (await context_for_current_loop()).admin()
        if dry_run:
            started = await admin.start_dry_run(body["key"], version=version)
            _log.info("admin dry run key=%s operation=%s", started.key_ref, started.operation_id)
            return _accepted(admin.accepted(started))
        result = await admin.rewrap(body["key"], version=version, restart=restart)
    except KeywardError as error:
        return _for_exception(error)
    _log.info("admin rewrap key=%s restart=%s", result.get("key"), restart)
    return _json(result, 202)


@bp.function_name("admin_verdict")
@bp.route(route="verdict", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
async def admin_verdict(req: func.HttpRequest) -> func.HttpResponse:
    body = _body(req, "{key}")
    if isinstance(body, func.HttpResponse):
        return body
    try:
        admin = (await context_for_current_loop()).admin()
        started = await admin.start_verdict(body["key"])
    except KeywardError as error:
        return _for_exception(error)
    _log.info("admin verdict key=%s operation=%s", started.key_ref, started.operation_id)
    return _accepted(admin.accepted(started))


@bp.function_name("admin_retire")
@bp.route(route="retire", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
async def admin_retire(req: func.HttpRequest) -> func.HttpResponse:
    body = _body(req, "{key, version?}")
    if isinstance(body, func.HttpResponse):
        return body
    version = body.get("version")
    if version is not None and not isinstance(version, str):
        return _error(400, "BadRequest", "'version' must be a string")
    try:
        admin = (await context_for_current_loop()).admin()
        started = await admin.start_retire(body["key"], version=version)
    except KeywardError as error:
        return _for_exception(error)
    _log.info("admin retire key=%s version=%s operation=%s", started.key_ref, started.version,
              started.operation_id)  # fmt: skip
    return _accepted(admin.accepted(started))


def _store(body: dict[str, Any]) -> str | func.HttpResponse:
    store = body.get("store")
    if not isinstance(store, str) or not store:
        return _error(400, "BadRequest", "'store' (a shard listed by GET /api/status) is required")
    return store


@bp.function_name("admin_migrate")
@bp.route(route="migrate", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
async def admin_migrate(req: func.HttpRequest) -> func.HttpResponse:
    body = _body(req, "{store, key, to}")
    if isinstance(body, func.HttpResponse):
        return body
    store = _store(body)
    if isinstance(store, func.HttpResponse):
        return store
    to = body.get("to")
    if not isinstance(to, str):
        return _error(400, "BadRequest", "'to' must be 'hierarchy' or 'direct'")
    try:
        admin = (await context_for_current_loop()).admin()
        started = await admin.start_migrate(body["key"], store=store, to=to)
    except KeywardError as error:
        return _for_exception(error)
    _log.info("admin migrate store=%s to=%s operation=%s", store, to, started.operation_id)
    return _accepted(admin.accepted(started))


@bp.function_name("admin_rotate_keks")
@bp.route(route="rotate-keks", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
async def admin_rotate_keks(req: func.HttpRequest) -> func.HttpResponse:
    body = _body(req, "{store, key, partition?, older_than_days?}")
    if isinstance(body, func.HttpResponse):
        return body
    store = _store(body)
    if isinstance(store, func.HttpResponse):
        return store
    partition, older = body.get("partition"), body.get("older_than_days")
    if partition is not None and not isinstance(partition, str):
        return _error(400, "BadRequest", "'partition' must be a string")
    if older is not None and (isinstance(older, bool) or not isinstance(older, int | float)):
        return _error(400, "BadRequest", "'older_than_days' must be a number")
    try:
        admin = (await context_for_current_loop()).admin()
        started = await admin.start_rotate_keks(
            body["key"], store=store, partition=partition,
            older_than_days=None if older is None else float(older),
        )  # fmt: skip
    except KeywardError as error:
        return _for_exception(error)
    _log.info("admin rotate-keks store=%s operation=%s", store, started.operation_id)
    return _accepted(admin.accepted(started))


@bp.function_name("admin_operation")
@bp.route(route="operations/{operation_id}", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
async def admin_operation(req: func.HttpRequest) -> func.HttpResponse:
    try:
        context = await context_for_current_loop()
        found = await context.admin().operation(req.route_params.get("operation_id", ""))
    except KeywardError as error:
        return _for_exception(error)
    if found is None:
        return _error(404, "OperationNotFound", "no such operation")
    running = found["status"] in {"accepted", "running"}
    return _json(found, 200, {"Retry-After": str(POLL_AFTER_SECONDS)} if running else None)
