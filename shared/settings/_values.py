"""Parsers for setting values: each returns the typed value or raises ``ValueError`` saying
what is expected; ``apply`` turns that into a ``SettingError`` naming the setting.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlsplit

from shared.crypto import VaultAllowList
from shared.errors import KeyIdError, SettingError
from shared.rewrap import FUNCTION_TIMEOUT_SECONDS, MAX_SLICE_SECONDS, SLICE_SAFETY_MARGIN_SECONDS
from shared.settings._ncrontab import Ncrontab

T = TypeVar("T")

#: Azure Resource Manager of the public cloud: the default endpoint and the audience of its
#: tokens (the emulator, which stands in for it on loopback, checks that same audience).
PUBLIC_ARM_ENDPOINT = "https://management.azure.com"
_ARM_HOSTS = ("management.azure.com", "management.chinacloudapi.cn", "management.usgovcloudapi.net")
_LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
STORAGE_SERVICES = ("blob", "queue", "table")
_GUID = re.compile(r"^[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")
_TABLE = re.compile(r"^[A-Za-z][A-Za-z0-9]{2,62}$")
_CONTAINER_OR_QUEUE = re.compile(r"^(?!.*--)[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$")
_RESOURCE_GROUP = re.compile(r"^[-\w.()]{0,89}[-\w()]$", re.ASCII)
#: Microsoft Entra ID's login endpoint in the public cloud: the admin API's default authority.
PUBLIC_LOGIN_AUTHORITY = "https://login.microsoftonline.com"
#: Entra ID login endpoints keyward trusts as the admin API's authority (public, US Government,
#: Azure operated by 21Vianet), so a typo cannot make it trust another issuer's keys.
_LOGIN_HOSTS = (
    "login.microsoftonline.com",
    "login.microsoftonline.us",
    "login.partner.microsoftonline.cn",
)
_EVENTGRID_SUFFIXES = (
    ".eventgrid.azure.net",
    ".eventgrid.azure.cn",
    ".eventgrid.usgovcloudapi.net",
)


def apply(name: str, raw: str, parse: Callable[[str], T]) -> T:
    try:
        return parse(raw)
    except (ValueError, KeyIdError) as exc:
        raise SettingError(name, str(exc)) from None


def allow_list(raw: str) -> VaultAllowList:
    allow_list = VaultAllowList.parse(raw)
    if not allow_list:
        raise ValueError("lists no vault")
    return allow_list


def list_of(item: Callable[[str], str]) -> Callable[[str], tuple[str, ...]]:
    def parse(raw: str) -> tuple[str, ...]:
        items = [part.strip() for part in raw.split(",") if part.strip()]
        return tuple(dict.fromkeys(item(part) for part in items))

    return parse


def as_bool(raw: str) -> bool:
    lowered = raw.lower()
    if lowered in ("true", "1", "yes", "on"):
        return True
    if lowered in ("false", "0", "no", "off"):
        return False
    raise ValueError(f"{raw[:20]!r} is not a boolean (expected true or false)")


#: Bounds of ``KEYWARD_VERIFY_INTERVAL_HOURS`` (0: off) and ``KEYWARD_RETENTION_DAYS``.
MAX_VERIFY_INTERVAL_HOURS = 8760
MIN_RETENTION_DAYS = 2
MAX_RETENTION_DAYS = 3650


def verify_interval_hours(raw: str) -> int:
    """Hours between verification passes of a clean job; 0 turns them off."""
    value = _whole(raw)
    if not 0 <= value <= MAX_VERIFY_INTERVAL_HOURS:
        raise ValueError(
            f"{value} is outside 0..{MAX_VERIFY_INTERVAL_HOURS} (hours; 0 turns verification off)"
        )
    return value


def retention_days(raw: str) -> int:
    """Days records are kept: at least two, since the event ledger must remember an event
    for the 24 hours Event Grid may redeliver it, whichever day it was first handled."""
    value = _whole(raw)
    if value < MIN_RETENTION_DAYS:
        raise ValueError(
            f"{value} is below {MIN_RETENTION_DAYS} days: Event Grid redelivers for up to 24 "
            "hours, so handled events must be remembered at least that long"
        )
    if value > MAX_RETENTION_DAYS:
        raise ValueError(f"{value} is above {MAX_RETENTION_DAYS} days")
    return value


def _whole(raw: str) -> int:
    try:
        return int(raw)
    except ValueError:
        raise ValueError(f"{raw[:20]!r} is not a whole number") from None


def int_between(low: int, high: int) -> Callable[[str], int]:
    def parse(raw: str) -> int:
        try:
            value = int(raw)
        except ValueError:
            raise ValueError(f"{raw[:20]!r} is not a whole number") from None
        if not low <= value <= high:
            raise ValueError(f"{value} is outside {low}..{high}")
        return value

    return parse


def vault_share(raw: str) -> float:
    """``KEYWARD_VAULT_SHARE``: a fraction of the vault's budget, more than 0, at most 1."""
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(
            f"{raw[:20]!r} is not a number (expected a fraction such as 0.5)"
        ) from None
    if not 0 < value <= 1:
        raise ValueError(
            f"{value} is outside (0, 1]: it is the fraction of each vault's budget keyward takes"
        )
    return value


def slice_seconds(raw: str) -> int:
    """``KEYWARD_REWRAP_SLICE_SECONDS``: a slice plus its safety margin must end before the
    host's ``functionTimeout``, or the host kills the worker mid-page."""
    value = int_between(10, 3600)(raw)
    if value > MAX_SLICE_SECONDS:
        raise ValueError(
            f"{value} s plus the {SLICE_SAFETY_MARGIN_SECONDS} s safety margin (drain, "
            f"checkpoint, continuation) passes host.json's functionTimeout of "
            f"{FUNCTION_TIMEOUT_SECONDS} s; use at most {MAX_SLICE_SECONDS}"
        )
    return value


def guid(raw: str) -> str:
    if not _GUID.match(raw):
        raise ValueError(f"{raw[:40]!r} is not a GUID")
    return raw.lower()


def table_name(raw: str) -> str:
    if not _TABLE.match(raw):
        raise ValueError(f"{raw[:70]!r} is not a table name (3-63 letters and digits)")
    return raw


def container_name(raw: str) -> str:
    if not _CONTAINER_OR_QUEUE.match(raw):
        raise ValueError(
            f"{raw[:70]!r} is not a container name (3-63 lower-case letters, digits, hyphens)"
        )
    return raw


def queue_name(raw: str) -> str:
    if not _CONTAINER_OR_QUEUE.match(raw):
        raise ValueError(
            f"{raw[:70]!r} is not a queue name (3-63 lower-case letters, digits, hyphens)"
        )
    return raw


def resource_group(raw: str) -> str:
    if not _RESOURCE_GROUP.match(raw):
        raise ValueError(f"{raw[:100]!r} is not a resource group name")
    return raw


def existing_file(raw: str) -> str:
    if not Path(raw).is_file():
        raise ValueError(f"{raw!r} is not a file")
    return raw


def https_origin(raw: str, *, allow_path: bool) -> tuple[str, str]:
    """Validate an https URL; returns (normalised URL, host)."""
    try:
        parts = urlsplit(raw)
        port = parts.port
    except ValueError:
        raise ValueError(f"{raw[:100]!r} is not a URL") from None
    if parts.scheme.lower() != "https" or not parts.hostname:
        raise ValueError(f"{raw[:100]!r} must be an https:// URL")
    if parts.username or parts.password or parts.query or parts.fragment:
        raise ValueError(f"{raw[:100]!r} must not carry credentials, a query or a fragment")
    if not allow_path and parts.path not in ("", "/"):
        raise ValueError(f"{raw[:100]!r} must be just https://host")
    host = parts.hostname.lower()
    netloc = f"[{host}]" if ":" in host else host
    if port is not None and port != 443:
        netloc += f":{port}"
    path = parts.path.rstrip("/") if allow_path else ""
    return f"https://{netloc}{path}", host


def _is_loopback(host: str) -> bool:
    return host in _LOOPBACK_HOSTS


def arm_endpoint(raw: str) -> str:
    url, host = https_origin(raw, allow_path=False)
    if host not in _ARM_HOSTS and not _is_loopback(host):
        raise ValueError(
            f"{raw[:100]!r} is not an Azure Resource Manager endpoint "
            f"({', '.join(_ARM_HOSTS)}) or a loopback emulator"
        )
    return url


def eventgrid_endpoint(raw: str) -> str:
    url, host = https_origin(raw, allow_path=True)
    if not host.endswith(_EVENTGRID_SUFFIXES) and not _is_loopback(host):
        raise ValueError(
            f"{raw[:100]!r} is not an Event Grid topic endpoint (*.eventgrid.azure.net)"
        )
    return url


def ncrontab(raw: str) -> str:
    return Ncrontab.parse(raw).expression


def login_authority(raw: str) -> str:
    """An Entra ID login endpoint (https, allow-listed hosts) or a loopback emulator."""
    url, host = https_origin(raw, allow_path=False)
    if host not in _LOGIN_HOSTS and not _is_loopback(host):
        raise ValueError(
            f"{raw[:100]!r} is not a Microsoft Entra ID login endpoint "
            f"({', '.join(_LOGIN_HOSTS)}) or a loopback emulator"
        )
    return url


def audiences(raw: str) -> tuple[str, ...]:
    """One or more token audiences separated by `,`: the API's client id (a GUID: what a v2.0
    access token's ``aud`` holds) and/or its application ID URI (``api://...`` or https)."""
    found: list[str] = []
    for item in (part.strip() for part in raw.split(",")):
        if not item:
            continue
        if not (_GUID.match(item) or item.startswith(("api://", "https://"))):
            raise ValueError(
                f"{item[:100]!r} is neither a client id (GUID) nor an api:// or https:// URI"
            )
        found.append(item.lower() if _GUID.match(item) else item)
    if not found:
        raise ValueError("name at least one audience")
    return tuple(found)
