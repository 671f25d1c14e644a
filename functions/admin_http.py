"""Admin HTTP API: status, rewrap, the operations and the dead-letter replay, each call
proven by a Microsoft Entra ID access token and allowed by its app role.

**Who may call.** Every route is ``AuthLevel.ANONYMOUS`` to the host and asks keyward's own
check first (``AppContext.admin_gate``: ``shared.services.admin_access``), before its body is
read: a bearer token signed by the configured tenant's keys, for keyward's audience, then
the role: ``Keyward.Reader`` reads (status, operations, verdicts, dry runs), ``Keyward.Operator``
also changes things. A function key proves no identity and cannot say reader or operator, so
it is not asked for at all (docs/admin-auth.md says why not both). No token, or one refused:
``401`` with ``WWW-Authenticate: Bearer``; a token without the role: ``403``; the check not
configured: ``500 AdminAuthNotConfigured`` on every route (never open). Headers App Service
Authentication would set (``X-MS-CLIENT-PRINCIPAL*``) are never read. Each mutating call
passes the caller to the service, which records it (operation record, audit trail, log);
one refused its role is audited as refused, with the caller its token proved.

``GET /api/status`` is one bounded page. ``POST /api/rewrap`` queues a rewrap (``202``).
Whole-store work answers ``202`` with ``Location: /api/operations/<id>`` and runs in the
background (the asynchronous request-reply pattern): ``POST /api/rewrap {"dry_run": true}``,
``POST /api/verdict {"key"}``, ``POST /api/retire {"key", "version"?}``, a store's jobs
``POST /api/migrate {"store", "key", "to"}`` and ``POST /api/rotate-keks {"store", "key",
"partition"?, "older_than_days"?}`` (``409 StoreJobBusy`` while the store's job runs:
docs/store-jobs.md); input is checked
first, and bad input gets its error at once with no operation recorded (the audit trail
keeps the refused call and its caller). ``GET
/api/operations/<id>`` reports one (``Retry-After`` while it runs). ``POST
/api/dead-letters/replay {"vault"?, "dry_run"?}`` replays dead-lettered events in the call
(at most one page of blobs; ``more`` says to call again).

Errors are JSON ``{"error": {"code", "message"}}`` with a status that says whose fault it
is (``shared.composition.error_answer``, the one mapping, which operations use too).
Responses carry ids, versions, counts and reasons only, never key material.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import azure.functions as func

from shared.composition import (
    Access,
    AppContext,
    Caller,
    context_for_current_loop,
    error_answer,
    require_access,
    traced_invocation,
)
from shared.errors import AdminAuthError, KeywardError
from shared.telemetry import (
    ATTR_CALLER_OBJECT_ID,
    ATTR_CALLER_ROLES,
    ATTR_CALLER_TENANT_ID,
    ATTR_CALLER_VIA,
    annotate_current_span,
)

bp = func.Blueprint()
_log = logging.getLogger("keyward.functions.admin")
#: Seconds a client should wait before polling an unfinished operation again.
POLL_AFTER_SECONDS = 2

Handler = Callable[[func.HttpRequest], Awaitable[func.HttpResponse]]


def _traced(
    handler: Handler,
) -> Callable[[func.HttpRequest, func.Context], Awaitable[func.HttpResponse]]:
    """The route as registered: the handler inside its invocation span (``http``), the
    host's trace context as parent. The wrapper declares ``context`` itself (the worker
    binds parameters by the registered function's signature), so handlers stay ``(req)``."""
    name = handler.__name__

    async def invocation(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
        with traced_invocation(name, context, trigger="http"):
            return await handler(req)

    invocation.__name__ = invocation.__qualname__ = name
    invocation.__doc__ = handler.__doc__
    return invocation


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


#: The ``realm`` of the ``WWW-Authenticate`` challenge.
REALM = "keyward"


def _auth_refusal(error: AdminAuthError) -> func.HttpResponse:
    """401/403 with an RFC 6750 challenge (no ``error`` when no token was sent, section
    3.1), 500/503 when the check cannot run; the body says the specific reason."""
    headers: dict[str, str] = {}
    if error.status == 401:
        challenge = f'Bearer realm="{REALM}"'
        if error.code != "MissingToken":
            challenge += f', error="invalid_token", error_description="{error.code}"'
        headers["WWW-Authenticate"] = challenge
    elif error.status == 403:
        headers["WWW-Authenticate"] = f'Bearer realm="{REALM}", error="insufficient_scope"'
    body = {"error": {"code": error.code, "message": str(error)}}
    return _json(body, error.status, headers)


async def _admitted(
    req: func.HttpRequest, access: Access, *, action: str | None = None
) -> tuple[AppContext, Caller] | func.HttpResponse:
    """The context and the proven caller, or the refusal to answer (nothing else read). A
    caller refused the role of a mutating ``action`` is audited (``_refused``)."""
    try:
        context = await context_for_current_loop()
        caller = await context.admin_gate().authenticate(req.headers.get("Authorization"))
    except AdminAuthError as error:
        return _auth_refusal(error)
    except KeywardError as error:
        return _for_exception(error)
    annotate_current_span(
        {
            ATTR_CALLER_OBJECT_ID: caller.object_id,
            ATTR_CALLER_TENANT_ID: caller.tenant_id,
            ATTR_CALLER_ROLES: ",".join(caller.roles),
            ATTR_CALLER_VIA: caller.via,
        }
    )
    try:
        require_access(caller, access)
    except AdminAuthError as error:
        return await _refused(context, caller, action, _named_key(req), error)
    return context, caller


def _named_key(req: func.HttpRequest) -> str:
    """The key a refused call's body names, for its audit row ("" when it names none); the
    body is only parsed."""
    try:
        body = req.get_json()
    except ValueError:
        return ""
    key = body.get("key") if isinstance(body, dict) else None
    return key if isinstance(key, str) else ""


async def _refused(
    context: AppContext, caller: Caller, action: str | None, target: str, error: AdminAuthError
) -> func.HttpResponse:
    """The 403 for a caller without the role; a mutating ``action`` is audited first."""
    if action is not None:
        await context.admin().record_refused(action, caller, target, error.code)
    return _auth_refusal(error)


async def _operator_unless_dry(
    context: AppContext, caller: Caller, dry_run: bool, action: str, target: str
) -> func.HttpResponse | None:
    """The refusal when a call that is not a dry run comes from a caller without the operator
    role (a dry run only reads: the reader admitted it already), audited; ``None`` lets it
    through."""
    if dry_run:
        return None
    try:
        require_access(caller, Access.OPERATE)
    except AdminAuthError as error:
        return await _refused(context, caller, action, target, error)
    return None


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
@bp.route(route="status", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@_traced
async def admin_status(req: func.HttpRequest) -> func.HttpResponse:
    admitted = await _admitted(req, Access.READ)
    if isinstance(admitted, func.HttpResponse):
        return admitted
    context, _ = admitted
    try:
        limit = _limit(req.params.get("limit"))
    except ValueError:
        return _error(400, "BadRequest", "'limit' must be an integer 1..200")
    try:
        page = await context.admin().status(
            limit=limit, continuation=req.params.get("continuation")
        )
    except KeywardError as error:
        return _for_exception(error)
    return _json(page)


@bp.function_name("admin_rewrap")
@bp.route(route="rewrap", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
@_traced
async def admin_rewrap(req: func.HttpRequest) -> func.HttpResponse:
    admitted = await _admitted(req, Access.READ)  # a dry run reads; the rest needs more
    if isinstance(admitted, func.HttpResponse):
        return admitted
    context, caller = admitted
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
    refused = await _operator_unless_dry(context, caller, dry_run, "rewrap", body["key"])
    if refused is not None:
        return refused
    try:
        admin = context.admin()
        if dry_run:
            started = await admin.start_dry_run(body["key"], version=version)
            _log.info("admin dry run key=%s operation=%s", started.key_ref, started.operation_id)
            return _accepted(admin.accepted(started))
        result = await admin.rewrap(body["key"], version=version, restart=restart, caller=caller)
    except KeywardError as error:
        return _for_exception(error)
    _log.info("admin rewrap key=%s restart=%s", result.get("key"), restart)
    return _json(result, 202)


@bp.function_name("admin_verdict")
@bp.route(route="verdict", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
@_traced
async def admin_verdict(req: func.HttpRequest) -> func.HttpResponse:
    admitted = await _admitted(req, Access.READ)
    if isinstance(admitted, func.HttpResponse):
        return admitted
    context, _ = admitted
    body = _body(req, "{key}")
    if isinstance(body, func.HttpResponse):
        return body
    try:
        admin = context.admin()
        started = await admin.start_verdict(body["key"])
    except KeywardError as error:
        return _for_exception(error)
    _log.info("admin verdict key=%s operation=%s", started.key_ref, started.operation_id)
    return _accepted(admin.accepted(started))


@bp.function_name("admin_retire")
@bp.route(route="retire", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
@_traced
async def admin_retire(req: func.HttpRequest) -> func.HttpResponse:
    admitted = await _admitted(req, Access.OPERATE, action="retire")
    if isinstance(admitted, func.HttpResponse):
        return admitted
    context, caller = admitted
    body = _body(req, "{key, version?}")
    if isinstance(body, func.HttpResponse):
        return body
    version = body.get("version")
    if version is not None and not isinstance(version, str):
        return _error(400, "BadRequest", "'version' must be a string")
    try:
        admin = context.admin()
        started = await admin.start_retire(body["key"], version=version, caller=caller)
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
@bp.route(route="migrate", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
@_traced
async def admin_migrate(req: func.HttpRequest) -> func.HttpResponse:
    admitted = await _admitted(req, Access.OPERATE, action="migrate")
    if isinstance(admitted, func.HttpResponse):
        return admitted
    context, caller = admitted
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
        admin = context.admin()
        started = await admin.start_migrate(body["key"], store=store, to=to, caller=caller)
    except KeywardError as error:
        return _for_exception(error)
    _log.info("admin migrate store=%s to=%s operation=%s", store, to, started.operation_id)
    return _accepted(admin.accepted(started))


@bp.function_name("admin_rotate_keks")
@bp.route(route="rotate-keks", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
@_traced
async def admin_rotate_keks(req: func.HttpRequest) -> func.HttpResponse:
    admitted = await _admitted(req, Access.OPERATE, action="rotate_keks")
    if isinstance(admitted, func.HttpResponse):
        return admitted
    context, caller = admitted
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
        admin = context.admin()
        started = await admin.start_rotate_keks(
            body["key"], store=store, partition=partition,
            older_than_days=None if older is None else float(older), caller=caller,
        )  # fmt: skip
    except KeywardError as error:
        return _for_exception(error)
    _log.info("admin rotate-keks store=%s operation=%s", store, started.operation_id)
    return _accepted(admin.accepted(started))


@bp.function_name("admin_operation")
@bp.route(route="operations/{operation_id}", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@_traced
async def admin_operation(req: func.HttpRequest) -> func.HttpResponse:
    admitted = await _admitted(req, Access.READ)
    if isinstance(admitted, func.HttpResponse):
        return admitted
    context, _ = admitted
    try:
        found = await context.admin().operation(req.route_params.get("operation_id", ""))
    except KeywardError as error:
        return _for_exception(error)
    if found is None:
        return _error(404, "OperationNotFound", "no such operation")
    running = found["status"] in {"accepted", "running"}
    return _json(found, 200, {"Retry-After": str(POLL_AFTER_SECONDS)} if running else None)


@bp.function_name("admin_replay_dead_letters")
@bp.route(route="dead-letters/replay", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
@_traced
async def admin_replay_dead_letters(req: func.HttpRequest) -> func.HttpResponse:
    """Replay dead-lettered events through the Event Grid trigger's handler, in this call:
    at most one page of blobs (``HTTP_REPLAY_BLOBS``), the report as the CLI's ``--json``
    gives it (``more``: call again). A dry run needs the reader role, a replay the operator's.
    """
    admitted = await _admitted(req, Access.READ)
    if isinstance(admitted, func.HttpResponse):
        return admitted
    context, caller = admitted
    try:
        body = req.get_json() if req.get_body() else {}
    except ValueError:
        return _error(400, "BadRequest", "body must be JSON: {vault?, dry_run?}")
    if not isinstance(body, dict):
        return _error(400, "BadRequest", "body must be a JSON object: {vault?, dry_run?}")
    vault, dry_run = body.get("vault"), body.get("dry_run", False)
    if (vault is not None and not isinstance(vault, str)) or not isinstance(dry_run, bool):
        return _error(400, "BadRequest", "'vault' must be a string and 'dry_run' a boolean")
    refused = await _operator_unless_dry(
        context, caller, dry_run, "replay_dead_letters", vault or "*"
    )
    if refused is not None:
        return refused
    try:
        report = await context.admin().replay_dead_letters(
            vault=vault, dry_run=dry_run, caller=caller
        )
    except KeywardError as error:
        return _for_exception(error)
    _log.info("admin dead-letter replay vault=%s dry_run=%s replayed=%d more=%s",
              vault or "*", dry_run, len(report.replayed), report.more)  # fmt: skip
    return _json(report.to_json())
