"""Deployment mode: the CLI on the Function App's own state, through its AdminService.

``--deployment`` builds the same :class:`shared.composition.AppContext` the Function App
builds, from the Function App's settings (the environment, or ``--settings FILE`` in the
``local.settings.json`` shape ``func azure functionapp fetch-app-settings`` writes), but with
the operator's credential. So ``status``, ``rewrap``, ``retirement`` and ``retire`` read and
start the very jobs and operations the admin API does (the state table, the job queue), and
the Function App's workers run them; the CLI only starts and polls, never O(DEKs) work.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

from shared.cli._factories import key_target
from shared.composition import AppContext, Caller, operator_caller
from shared.crypto import VaultAllowList, is_valid_key_name
from shared.errors import ConfigurationError, ServiceError
from shared.services.admin import AdminService
from shared.settings import Settings

#: Opens the deployment's context (tests inject one on the emulator's credential).
ContextOpener = Callable[[], Awaitable[AppContext]]
#: Seconds between two polls of an operation or a job (the admin API's ``Retry-After``).
DEFAULT_POLL_SECONDS = 2.0


async def open_deployment(settings_file: Path | None = None) -> AppContext:
    """The Function App's context from its settings (the environment, or ``settings_file``).

    Raises:
        ConfigurationError: a setting is missing or invalid, or the file is unreadable.
        ServiceError: keyward's storage could not be reached.
    """
    return await AppContext.build(deployment_settings(settings_file))


def deployment_settings(settings_file: Path | None = None) -> Settings:
    """The Function App's settings, as the operator's CLI uses them: all of them but
    ``AZURE_CLIENT_ID``, which picks the Function App's user-assigned identity; the CLI asks
    ``DefaultAzureCredential`` for the operator's own credential, never that identity.

    Raises:
        ConfigurationError: a setting is missing or invalid, or the file is unreadable.
    """
    source = load_settings_file(settings_file) if settings_file is not None else os.environ
    return Settings.from_env({k: v for k, v in source.items() if k != "AZURE_CLIENT_ID"})


def deployment_opener(args: argparse.Namespace, injected: ContextOpener | None) -> ContextOpener:
    """The opener a command uses: an injected one (tests), else the settings named."""
    if injected is not None:
        return injected
    settings_file: Path | None = getattr(args, "settings", None)

    async def opener() -> AppContext:
        return await open_deployment(settings_file)

    return opener


def in_deployment_mode(args: argparse.Namespace) -> bool:
    """``--deployment``, or ``--settings FILE`` (which names a deployment)."""
    return bool(getattr(args, "deployment", False) or getattr(args, "settings", None))


def load_settings_file(path: Path) -> dict[str, str]:
    """The ``Values`` of a ``local.settings.json``-shaped file (or a flat JSON object).

    Raises:
        ConfigurationError: unreadable, not JSON, or not an object of settings; the message
            names the file only (a settings file may hold connection settings).
    """
    try:
        data: Any = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeError, ValueError) as error:
        raise ConfigurationError(f"--settings {path}: {type(error).__name__}") from None
    values = data.get("Values", data) if isinstance(data, dict) else None
    if not isinstance(values, dict) or data.get("IsEncrypted") is True:
        raise ConfigurationError(
            f"--settings {path}: expected {{'Values': {{...}}}} with plain values (run "
            "'func settings decrypt' on a fetched file)"
        )
    return {str(name): "" if value is None else str(value) for name, value in values.items()}


def refuse_local_options(args: argparse.Namespace, defaults: Mapping[str, Any]) -> None:
    """Options of the embedded mode have no meaning on a deployment (its settings decide).

    Raises:
        ConfigurationError: one was given.
    """
    given = [name for name, default in defaults.items() if getattr(args, name, default) != default]
    if given:
        options = ", ".join("--" + name.replace("_", "-") for name in given)
        raise ConfigurationError(
            f"{options}: not with --deployment (the Function App's settings decide)"
        )


def require_deployment(args: argparse.Namespace, defaults: Mapping[str, Any]) -> None:
    """Options that only mean something on a deployment.

    Raises:
        ConfigurationError: one was given without ``--deployment``.
    """
    given = [name for name, default in defaults.items() if getattr(args, name, default) != default]
    if given:
        options = ", ".join("--" + name.replace("_", "-") for name in given)
        raise ConfigurationError(f"{options}: only with --deployment")


def deployment_key(allow_list: VaultAllowList, vault: str, key: str) -> str:
    """The key's id on the deployment: ``--vault`` is a name on the deployment's allow-list
    (its URL from there, a development entry's too) or a vault URL.

    Raises:
        KeyIdError: the vault is not a valid name or URL.
        ConfigurationError: the key name is not valid.
    """
    if allow_list.allows_name(vault):
        if not is_valid_key_name(key):
            raise ConfigurationError(f"--key {key!r} is not a valid Key Vault key name")
        return f"{allow_list.by_name(vault).url}/keys/{key}"
    return key_target(vault, key).key_ref


async def caller_of(context: AppContext) -> Caller:
    """Who runs this command, from the credential it reaches the deployment with.

    Raises:
        AccessDeniedError: the credential could not get a token.
        ConfigurationError: the token names no object id or tenant.
    """
    return await operator_caller(context.credential, context.settings.arm_endpoint)


#: Called with each polled operation record (progress display).
OperationProgress = Callable[[Mapping[str, Any]], None]


async def wait_for_operation(
    admin: AdminService,
    operation_id: str,
    *,
    poll_seconds: float,
    timeout: float | None,
    progress: OperationProgress | None = None,
) -> dict[str, Any]:
    """Poll the operation's record (what ``GET /api/operations/<id>`` answers) until it has
    succeeded or failed; returns that record.

    Raises:
        ServiceError: the record vanished, or ``timeout`` passed (the operation goes on in
            the Function App: the message says how to look at it again).
    """
    end = None if timeout is None else time.monotonic() + timeout
    while True:
        found = await admin.operation(operation_id)
        if found is None:
            raise ServiceError(f"operation {operation_id} is not recorded (retention?)")
        if progress is not None:
            progress(found)
        if found["status"] in ("succeeded", "failed"):
            return found
        if end is not None and time.monotonic() >= end:
            raise ServiceError(
                f"operation {operation_id} is still {found['status']} after {timeout:g} s; "
                f"it goes on: keyward status --deployment --operation {operation_id}"
            )
        await asyncio.sleep(poll_seconds)


def add_deployment(parser: argparse.ArgumentParser, *, waits: bool, flag: bool = True) -> None:
    """``--deployment`` (unless the command always works on one) and ``--settings``;
    ``--poll`` and ``--timeout`` for a command that waits on the deployment's workers."""
    if flag:
        parser.add_argument(
            "--deployment",
            action="store_true",
            help="work on the Function App's own state (its settings from the environment) "
            "through its admin service, with your Azure credential; default: the local stores",
        )
    parser.add_argument(
        "--settings",
        type=Path,
        metavar="FILE",
        help="the Function App's settings from FILE (local.settings.json shape: "
        "{'Values': {...}}) instead of the environment"
        + ("; implies --deployment" if flag else ""),
    )
    if waits:
        parser.add_argument(
            "--poll",
            type=float,
            default=DEFAULT_POLL_SECONDS,
            metavar="SECONDS",
            help="deployment mode: seconds between polls (default %(default)s)",
        )
        parser.add_argument(
            "--timeout",
            type=float,
            metavar="SECONDS",
            help="deployment mode: stop waiting after SECONDS (the work goes on); default: "
            "wait until it ends",
        )
