"""``keyward connect-vault``, ``disconnect-vault`` and ``doctor``: vault onboarding.

They run with the Function App's settings in the environment (as ``replay-dead-letters``
does) and the operator's Azure credential. The vault must be on ``KEYWARD_VAULT_ALLOWLIST``:
that is checked before any call. The Function App (``--function-app``, its resource id) and
keyward's identity (``--principal-id``, the object id of the app's managed identity) are
flags: they are facts of the deployment, not app settings. ``--dead-letter-account`` is the
resource id of the storage account holding ``KEYWARD_DEADLETTER_CONTAINER``. ``--principal-id``
and ``--subscription`` must be GUIDs (argparse refuses anything else, exit 2, before any
call: the principal id goes into an ARM filter). ``disconnect-vault --remove-access-policy``
also removes the four key permissions of an access-policy vault (left by default: access
policies carry no author).
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable

from rich.console import Console
from rich.table import Table

from shared.cli._output import EXIT_ATTENTION, EXIT_OK, print_json
from shared.composition import OnboardingSession, deployment_for, open_onboarding
from shared.errors import ConfigurationError
from shared.services.onboarding import CONFLICT, Check, Step, storage_checks
from shared.settings import Settings

#: Opens onboarding for the deployment ``(settings, args) -> session`` (tests may inject one).
OnboardingOpener = Callable[[Settings, argparse.Namespace], OnboardingSession]

COMMANDS = ("connect-vault", "disconnect-vault", "doctor")
_GUID = re.compile(r"^[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")


def _guid(text: str) -> str:
    """An argparse type: a GUID (an object id, an Azure subscription id), lower case."""
    if not _GUID.match(text):
        raise argparse.ArgumentTypeError(
            f"{text[:40]!r} is not a GUID (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)"
        )
    return text.lower()


def open_deployment_onboarding(settings: Settings, args: argparse.Namespace) -> OnboardingSession:
    """Onboarding with the operator's ``DefaultAzureCredential``; wrong deployment flags give
    a session without onboarding that says why (doctor still checks storage)."""
    try:
        deployment = deployment_for(
            settings,
            function_app_id=args.function_app,
            principal_id=args.principal_id,
            subscription_ids=args.subscription or (),
            dead_letter_account_id=args.dead_letter_account,
        )
    except ConfigurationError as error:
        return open_onboarding(settings, None, deployment_error=str(error))
    return open_onboarding(settings, deployment)


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The three sub-commands and their options."""
    helps = {
        "connect-vault": "create the vault's Event Grid system topic, keyward's event "
        "subscriptions and its identity's access (idempotent)",
        "disconnect-vault": "remove what connect-vault created for a vault, and only that",
        "doctor": "check the deployment: settings, storage names, access and event "
        "subscriptions on every allow-listed vault",
    }
    for name in COMMANDS:
        parser = commands.add_parser(name, help=helps[name])
        if name != "doctor":
            parser.add_argument(
                "--vault", required=True, help="the vault, by its name on KEYWARD_VAULT_ALLOWLIST"
            )
        parser.add_argument(
            "--function-app", required=True, metavar="ID", help="the Function App's resource id"
        )
        parser.add_argument(
            "--principal-id",
            required=True,
            type=_guid,
            metavar="OBJECT_ID",
            help="object id of the Function App's managed identity (keyward's identity), a GUID",
        )
        parser.add_argument(
            "--dead-letter-account",
            metavar="ID",
            help="resource id of the storage account holding KEYWARD_DEADLETTER_CONTAINER",
        )
        parser.add_argument(
            "--subscription",
            action="append",
            type=_guid,
            help="an Azure subscription id (GUID) the vaults are in; repeat for several "
            "(default: the Function App's)",
        )
        if name == "disconnect-vault":
            parser.add_argument(
                "--remove-access-policy",
                action="store_true",
                help="on an access-policy vault, also remove keys get,list,wrapKey,unwrapKey "
                "from keyward's identity (left by default: access policies carry no author, "
                "so keyward cannot tell whether connect-vault added them)",
            )
        parser.add_argument("--json", action="store_true", help="print as JSON")


async def run_onboard(
    args: argparse.Namespace,
    console: Console,
    opener: OnboardingOpener = open_deployment_onboarding,
) -> int:
    """connect-vault / disconnect-vault: exit 0, or 3 when connect-vault found a conflict (an
    event subscription under this deployment's name delivering to another Function App, left
    alone). doctor: 0 when every check is right, 3 when one is wrong (a settings error too:
    it is the first check)."""
    if args.command == "doctor":
        return await _doctor(args, console, opener)
    settings = Settings.from_env()
    vault = settings.vault_allowlist.by_name(args.vault)  # refused before any call
    session = opener(settings, args)
    try:
        onboarding = session.require()
        if args.command == "connect-vault":
            steps = await onboarding.connect(vault.name)
        else:
            steps = await onboarding.disconnect(
                vault.name, remove_access_policy=args.remove_access_policy
            )
    finally:
        await session.aclose()
    conflicts = [s for s in steps if s.action == CONFLICT]
    if args.json:
        print_json(console, {"vault": vault.name, "steps": [_step_json(s) for s in steps]})
    else:
        _render_steps(console, f"{args.command} {vault.name}", steps)
        if conflicts:
            console.print(f"{len(conflicts)} conflict(s): see the detail; left unchanged")
    return EXIT_ATTENTION if conflicts else EXIT_OK


async def _doctor(args: argparse.Namespace, console: Console, opener: OnboardingOpener) -> int:
    try:
        settings = Settings.from_env()
    except ConfigurationError as error:
        checks = [Check("settings", False, str(error), "fix the setting it names")]
    else:
        checks = await _doctor_checks(settings, args, opener)
    wrong = [c for c in checks if not c.ok]
    if args.json:
        print_json(console, {"ok": not wrong, "checks": [c.to_json() for c in checks]})
    else:
        table = Table(title="keyward doctor")
        for column in ("check", "", "detail", "fix"):
            table.add_column(column)
        for check in checks:
            mark = "[green]OK[/green]" if check.ok else "[red]WRONG[/red]"
            table.add_row(check.name, mark, check.detail, check.fix)
        console.print(table)
        console.print(f"{len(checks) - len(wrong)} right, {len(wrong)} wrong")
    return EXIT_ATTENTION if wrong else EXIT_OK


async def _doctor_checks(
    settings: Settings, args: argparse.Namespace, opener: OnboardingOpener
) -> list[Check]:
    """Every check; wrong deployment flags are a wrong ``settings`` check, and the storage
    checks (which need only the settings) still run."""
    try:
        session = opener(settings, args)
    except ConfigurationError as error:
        return [Check("settings", False, str(error), "fix the setting it names")]
    try:
        if session.onboarding is None:
            fix = "fix --function-app / --dead-letter-account"
            checks = [Check("settings", False, session.deployment_error or "", fix)]
            return checks + await storage_checks(session.storage, session.needs)
        names = [v.name for v in settings.vault_allowlist.vaults]
        checks = [Check("settings", True, f"valid; {len(names)} allow-listed vault(s)")]
        return checks + await session.onboarding.doctor(names, session.needs)
    finally:
        await session.aclose()


def _step_json(step: Step) -> dict[str, str]:
    return {"item": step.item, "action": step.action, "detail": step.detail}


def _render_steps(console: Console, title: str, steps: list[Step]) -> None:
    table = Table(title=title)
    for column in ("item", "action", "detail"):
        table.add_column(column)
    for step in steps:
        table.add_row(step.item, step.action, step.detail)
    console.print(table)
