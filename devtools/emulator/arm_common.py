"""What every ARM resource provider of the emulator shares: routing, auth, errors, events.

ARM paths are case-insensitive (``resourceGroups`` and ``resourcegroups`` name the same
thing), and role-assignment scopes nest arbitrarily deep, so the providers do not use
aiohttp's router: one catch-all route under ``/subscriptions/`` hands each request to a
table of case-insensitive regular expressions (:class:`Dispatcher`).

Every request must carry a bearer token minted for ``https://management.azure.com`` by the
emulator's credential; the caller it names appears in the ``claims`` of the
``Microsoft.Resources`` events a write emits, as in Azure.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import re
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from devtools.emulator import auth
from devtools.emulator.state import EmulatorState

ARM_AUDIENCE = auth.ARM_RESOURCE


class ArmError(Exception):
    """A refusal in ARM's error shape ``{"error": {"code", "message"}}``."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def not_found(resource_type: str, name: str, group: str) -> ArmError:
    """ARM's 404 for a missing tracked resource."""
    return ArmError(
        404,
        "ResourceNotFound",
        f"The Resource '{resource_type}/{name}' under resource group '{group}' was not found. "
        "For more details please go to https://aka.ms/ARMResourceNotFoundFix",
    )


def iso(timestamp: float) -> str:
    """ARM's timestamp form (seven fractional digits, ``Z``)."""
    moment = dt.datetime.fromtimestamp(timestamp, dt.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f") + "0Z"


def token_claims(authorization: str | None) -> dict[str, Any]:
    """The claims of the caller's (unsigned, emulator-minted) token; empty if unreadable."""
    if not authorization or not authorization.startswith("Bearer "):
        return {}
    parts = authorization[len("Bearer ") :].strip().split(".")
    if len(parts) != 3:
        return {}
    try:
        claims = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except ValueError:
        return {}
    return claims if isinstance(claims, dict) else {}


@dataclass
class Call:
    """One authenticated ARM request as a handler sees it."""

    request: web.Request
    caller: auth.Caller
    params: dict[str, str]
    correlation_id: str = field(default_factory=lambda: str(uuid.uuid4()))

    @property
    def subscription_id(self) -> str:
        """The subscription in the path (every ARM path here starts ``/subscriptions/{id}``)."""
        if "sub" in self.params:
            return self.params["sub"]
        return self.request.path.split("/")[2]

    @property
    def origin(self) -> str:
        return f"{self.request.scheme}://{self.request.host}"

    async def body(self) -> dict[str, Any]:
        """The JSON body; ARM answers 400 ``InvalidRequestContent`` for anything else."""
        raw = await self.request.read()
        try:
            value = json.loads(raw or b"null")
        except ValueError as error:
            raise ArmError(
                400, "InvalidRequestContent", f"The request content was invalid: {error}"
            ) from error
        if not isinstance(value, dict):
            raise ArmError(
                400, "InvalidRequestContent", "The request content must be a JSON object."
            )
        return value

    def claims(self) -> dict[str, Any]:
        """The ``claims`` object of a Microsoft.Resources event, from the caller's token."""
        raw = token_claims(self.request.headers.get("Authorization"))
        tenant = str(raw.get("tid", self.caller.tenant_id))
        return {
            "aud": str(raw.get("aud", ARM_AUDIENCE)),
            "iss": str(raw.get("iss", f"https://sts.windows.net/{tenant}/")),
            "iat": str(raw.get("iat", "")),
            "nbf": str(raw.get("nbf", "")),
            "exp": str(raw.get("exp", "")),
            "aio": "",
            "appid": self.caller.app_id,
            "appidacr": "2",
            "http://schemas.microsoft.com/identity/claims/identityprovider": raw.get(
                "iss", f"https://sts.windows.net/{tenant}/"
            ),
            "http://schemas.microsoft.com/identity/claims/objectidentifier": self.caller.object_id,
            "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/nameidentifier": (
                self.caller.object_id
            ),
            "http://schemas.microsoft.com/identity/claims/tenantid": tenant,
            "idtyp": "app",
            "uti": self.correlation_id.replace("-", "")[:22],
            "ver": "1.0",
        }


Handler = Callable[[Call], Awaitable[web.StreamResponse]]


@dataclass
class Route:
    methods: frozenset[str]
    pattern: re.Pattern[str]
    handler: Handler
    #: api-versions the provider accepts for this route (the SDK's, plus earlier stable ones).
    api_versions: frozenset[str]
    resource_type: str


class Dispatcher:
    """Case-insensitive ARM routing with ARM's authentication and api-version checks."""

    def __init__(self, state: EmulatorState) -> None:
        self.state = state
        self.routes: list[Route] = []

    def add(
        self,
        methods: str,
        pattern: str,
        handler: Handler,
        api_versions: frozenset[str],
        resource_type: str,
    ) -> None:
        """Register ``pattern`` (a regex over the path; ``{sub}``-style names are groups)."""
        regex = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", pattern)
        regex = regex.replace("(?P<scope>[^/]+)", "(?P<scope>/.+?)")
        self.routes.append(
            Route(
                frozenset(methods.split()),
                re.compile(f"^{regex}/?$", re.IGNORECASE),
                handler,
                api_versions,
                resource_type,
            )
        )

    async def handle(self, request: web.Request) -> web.StreamResponse:
        try:
            return await self._dispatch(request)
        except ArmError as error:
            return error_response(error)

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        caller = self._authenticate(request)  # ARM authenticates before it routes
        matched = [(route, route.pattern.match(path)) for route in self.routes]
        candidates = [(route, match) for route, match in matched if match is not None]
        if not candidates:
            raise ArmError(
                404,
                "InvalidResourceType",
                f"The resource type could not be found for the path '{path}'.",
            )
        for route, match in candidates:
            if request.method not in route.methods:
                continue
            self._check_api_version(request, route)
            call = Call(request=request, caller=caller, params=match.groupdict())
            response = await route.handler(call)
            response.headers.setdefault("x-ms-request-id", str(uuid.uuid4()))
            response.headers.setdefault("x-ms-correlation-request-id", call.correlation_id)
            return response
        raise ArmError(
            405,
            "MethodNotAllowed",
            f"The requested resource does not support http method '{request.method}'.",
        )

    def _authenticate(self, request: web.Request) -> auth.Caller:
        header = request.headers.get("Authorization")
        caller = auth.authenticate(header, self.state, (ARM_AUDIENCE,))
        if caller is not None:
            return caller
        if not header:
            raise _unauthenticated(
                "AuthenticationFailed",
                "Authentication failed. The 'Authorization' header is missing.",
                "The authentication failed because of missing 'Authorization' header.",
            )
        raise _unauthenticated(
            "InvalidAuthenticationToken",
            "The access token is invalid.",
            "The access token is expired, malformed or not for https://management.azure.com.",
        )

    @staticmethod
    def _check_api_version(request: web.Request, route: Route) -> None:
        version = request.query.get("api-version")
        if not version:
            raise ArmError(
                400,
                "MissingApiVersionParameter",
                "The api-version query parameter (?api-version=) is required for all requests.",
            )
        if version not in route.api_versions:
            namespace, _, kind = route.resource_type.partition("/")
            raise ArmError(
                400,
                "NoRegisteredProviderFound",
                f"No registered resource provider found for location 'global' and API version "
                f"'{version}' for type '{kind}'. The supported api-versions are "
                f"'{', '.join(sorted(route.api_versions))}'. The supported locations are "
                f"'global' (namespace {namespace}).",
            )


class _Unauthenticated(ArmError):
    def __init__(self, code: str, message: str, description: str) -> None:
        super().__init__(401, code, message)
        self.description = description


def _unauthenticated(code: str, message: str, description: str) -> _Unauthenticated:
    return _Unauthenticated(code, message, description)


def error_response(error: ArmError) -> web.Response:
    response = web.json_response(
        {"error": {"code": error.code, "message": error.message}}, status=error.status
    )
    if isinstance(error, _Unauthenticated):
        response.headers["WWW-Authenticate"] = (
            'Bearer authorization_uri="https://login.microsoftonline.com/common", '
            f'error="invalid_token", error_description="{error.description}"'
        )
    return response


# --- Microsoft.Resources events ------------------------------------------------------------------


def _resource_group_of(resource_uri: str) -> str | None:
    match = re.match(r"^(/subscriptions/[^/]+/resourceGroups/[^/]+)", resource_uri, re.IGNORECASE)
    return match.group(1) if match else None


def publish_resource_event(
    state: EmulatorState,
    call: Call,
    *,
    deleted: bool,
    resource_uri: str,
    operation_name: str,
) -> None:
    """Emit ``Microsoft.Resources.ResourceWriteSuccess`` / ``ResourceDeleteSuccess``.

    Published on the subscription's topic (``/subscriptions/{id}``) and, for a resource in a
    resource group, on that group's topic too: Azure has a system topic for each. The data
    keys are those of the samples in ``../shared/specs/eventgrid/resources/`` (the delete
    sample carries ``httpRequest``, the write sample does not).
    """
    data: dict[str, Any] = {
        "authorization": {
            "scope": resource_uri,
            "action": operation_name,
            "evidence": {"role": "Subscription Admin"},
        },
        "claims": call.claims(),
        "correlationId": call.correlation_id,
    }
    if deleted:
        data["httpRequest"] = {
            "clientRequestId": call.request.headers.get("x-ms-client-request-id", ""),
            "clientIpAddress": call.request.remote or "127.0.0.1",
            "method": call.request.method,
            "url": str(call.request.url),
        }
    data.update(
        {
            "resourceProvider": operation_name.split("/", 1)[0],
            "resourceUri": resource_uri,
            "operationName": operation_name,
            "status": "Succeeded",
            "subscriptionId": call.subscription_id,
            "tenantId": call.caller.tenant_id,
        }
    )
    event_type = (
        "Microsoft.Resources.ResourceDeleteSuccess"
        if deleted
        else "Microsoft.Resources.ResourceWriteSuccess"
    )
    topics = [f"/subscriptions/{call.subscription_id}"]
    group = _resource_group_of(resource_uri)
    if group is not None:
        topics.append(group)
    for topic in topics:
        state.events.publish(topic, event_type, resource_uri, json.loads(json.dumps(data)))
