"""The deployment's onboarding inputs, before any call: Key Vault Reader follows every watched
kind of key-dependent resource (not Face alone), and the CLI refuses a principal id or a
subscription that is not a GUID (exit 2) without opening anything."""

from __future__ import annotations

import argparse
import io

import pytest
from rich.console import Console

from shared.cli import main
from shared.composition import OnboardingSession, deployment_for
from shared.onboarding import KEY_VAULT_READER, roles_for
from shared.settings import Settings

SUB = "0f5a3c2e-1111-4222-8333-944455556666"
APP = f"/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.Web/sites/app"
PRINCIPAL = "7d1c0a52-2222-4333-8444-955566667777"
BASE = {
    "KEYWARD_VAULT_ALLOWLIST": "contoso-kv",
    "AzureWebJobsStorage": "UseDevelopmentStorage=true",
}


@pytest.mark.parametrize(
    ("kinds", "subscriptions_setting", "reader"),
    [
        ("face", "KEYWARD_FACE_SUBSCRIPTIONS", True),
        ("storage", "KEYWARD_STORAGE_ACCOUNTS_SUBSCRIPTIONS", True),
        ("cognitive", "KEYWARD_COGNITIVE_SUBSCRIPTIONS", True),
        ("storage,cognitive", None, False),  # watched, but no subscriptions: no verdicts
    ],
)
def test_key_vault_reader_is_wanted_when_any_watched_kind_has_subscriptions(
    kinds: str, subscriptions_setting: str | None, reader: bool
) -> None:
    env = {**BASE, "KEYWARD_DEPENDENT_KINDS": kinds}
    if subscriptions_setting:
        env[subscriptions_setting] = SUB
    deployment = deployment_for(Settings.from_env(env), function_app_id=APP, principal_id=PRINCIPAL)
    assert deployment.dependent_verdicts is reader
    assert (KEY_VAULT_READER in roles_for(dependent_verdicts=deployment.dependent_verdicts)) is (
        reader
    )


def _never_opened(settings: Settings, args: argparse.Namespace) -> OnboardingSession:
    raise AssertionError("the opener ran: an ARM call could follow")


@pytest.mark.parametrize(
    ("flag", "value"),
    [
        ("--principal-id", "x' or principalId ne '"),  # would end up in an OData filter
        ("--principal-id", "not-a-guid"),
        ("--subscription", "my-subscription"),
    ],
)
@pytest.mark.parametrize("command", ["connect-vault", "disconnect-vault", "doctor"])
def test_a_principal_or_subscription_that_is_not_a_guid_is_refused_before_any_call(
    command: str, flag: str, value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    args = [command, "--function-app", APP, "--principal-id", PRINCIPAL]
    if command != "doctor":
        args += ["--vault", "contoso-kv"]
    if flag == "--principal-id":
        args[args.index("--principal-id") + 1] = value
    else:
        args += [flag, value]
    with pytest.raises(SystemExit) as exited:
        main(args, Console(file=io.StringIO()), open_onboarding=_never_opened)
    assert exited.value.code == 2
    error = capsys.readouterr().err
    assert flag in error
    assert "is not a GUID" in error
