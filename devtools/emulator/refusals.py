"""The service's refusals, in one place: error bodies, and the checks that produce them.

Every answer is ``{"error": {"code", "message", "innererror": {"code"}}}`` with the service's
status, code and wording; ``docs/emulator.md`` ("Refusals") gives the source of each. The
data plane raises :class:`KvError` and its middleware renders it with :func:`error_response`.
"""

from __future__ import annotations

import base64
import re
from typing import Any

from aiohttp import web

from devtools.emulator.lifecycle import parse_duration
from devtools.emulator.state import KeyVersion
from devtools.emulator.throttle import retry_after_header


class KvError(Exception):
    """An error answer in the service's ``{"error": {"code", "message"}}`` shape."""

    def __init__(self, status: int, code: str, message: str, inner: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.inner = inner


def error_response(
    status: int,
    code: str,
    message: str,
    inner: str | None = None,
    headers: dict[str, str] | None = None,
) -> web.Response:
    error: dict[str, Any] = {"code": code, "message": message}
    if inner:
        error["innererror"] = {"code": inner}
    return web.json_response({"error": error}, status=status, headers=headers)


def not_found(name: str, version: str | None = None) -> KvError:
    ident = f"{name}/{version}" if version else name
    return KvError(
        404,
        "KeyNotFound",
        f"A key with (name/id) {ident} was not found in this key vault. If you recently deleted "
        "this key you may be able to recover it using the correct recovery command. For help "
        "resolving this issue, please see https://go.microsoft.com/fwlink/?linkid=2125182",
    )


def bad(message: str) -> KvError:
    return KvError(400, "BadParameter", message)


class Throttled(KvError):
    def __init__(self, wait: float) -> None:
        super().__init__(
            429,
            "Throttled",
            "Request was not processed because too many requests were received. Reason: "
            "VaultRequestTypeLimitReached",
        )
        self.wait = wait


def check_usable(version: KeyVersion, op: str, now: float) -> None:
    """The service's refusals for a key that exists and may be used by this caller.

    Disabled keys refuse every cryptographic operation (403 KeyDisabled). Outside the
    nbf/exp window the *protecting* operations (encrypt, wrapKey, sign) are refused, while
    decrypt/unwrapKey/verify keep working so data is never crypto-locked. An operation not
    in ``key_ops`` is refused with 403 KeyOperationForbidden.
    """
    if not version.enabled:
        raise KvError(
            403, "Forbidden", f"Operation {op} is not allowed on a disabled key.", "KeyDisabled"
        )
    if op in ("encrypt", "wrapKey", "sign"):
        if version.expires is not None and now >= version.expires:
            raise KvError(
                403, "Forbidden", f"Operation {op} is not allowed on an expired key.", "KeyExpired"
            )
        if version.not_before is not None and now < version.not_before:
            raise KvError(
                403,
                "Forbidden",
                f"Operation {op} is not allowed on a key that is not yet valid.",
                "KeyNotYetValid",
            )
    if op not in version.key_ops:
        raise KvError(
            403,
            "Forbidden",
            f"Operation {op} is not permitted on this key.",
            "KeyOperationForbidden",
        )


_KEY_NAME = re.compile(r"^[0-9a-zA-Z-]{1,127}$")


def check_key_name(name: str) -> None:
    if not _KEY_NAME.match(name):
        raise bad(f"The key name '{name}' is invalid: use 1-127 letters, digits and dashes.")


def duration(value: Any, field: str) -> float:
    try:
        return parse_duration(str(value))
    except ValueError:
        raise bad(f"'{field}' must be an ISO 8601 duration, got {value!r}.") from None


def validate_policy_action(action: Any) -> None:
    """One ``lifetimeActions`` entry: an action type and exactly one trigger duration."""
    if not isinstance(action, dict):
        raise bad("Each lifetime action must be an object.")
    kind = str((action.get("action") or {}).get("type", "")).lower()
    if kind not in ("rotate", "notify"):
        raise bad("A lifetime action's type must be Rotate or Notify.")
    trigger = action.get("trigger") or {}
    durations = [k for k in ("timeAfterCreate", "timeBeforeExpiry") if trigger.get(k)]
    if len(durations) != 1:
        raise bad("A lifetime action needs exactly one of timeAfterCreate, timeBeforeExpiry.")
    if kind == "notify" and durations[0] != "timeBeforeExpiry":
        raise bad("A Notify action is triggered by timeBeforeExpiry.")
    duration(trigger[durations[0]], durations[0])


def throttled_response(err: Throttled, *, retry_after: bool = True) -> web.Response:
    """The 429; ``retry_after=False`` leaves the header out, as the service sometimes does."""
    headers = {"Retry-After": retry_after_header(err.wait)} if retry_after else None
    return error_response(429, err.code, err.message, headers=headers)


_BASE64URL = re.compile(r"^[A-Za-z0-9_-]*={0,2}$")


def base64url_field(body: dict[str, Any], name: str) -> bytes:
    """Decode the base64url field ``name`` of a request body, as the service does.

    Standard base64 (``+`` or ``/``) is refused with the service's model-binding answer
    (400 BadParameter); trailing ``=`` padding is accepted (docs/emulator.md, "base64url").
    """
    text = body.get(name)
    if not isinstance(text, str) or not _BASE64URL.match(text) or len(text.rstrip("=")) % 4 == 1:
        raise bad(f"Content of '{name}' is not base64url.\r\nProperty '{name}' is required.\r\n")
    stripped = text.rstrip("=")
    return base64.urlsafe_b64decode(stripped + "=" * (-len(stripped) % 4))
