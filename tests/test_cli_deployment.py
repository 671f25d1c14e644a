"""The CLI's deployment mode, without a deployment: what it renders, who it says asked, how it
reads the Function App's settings, and which options it refuses. End to end (Azurite, the
emulator, the local host): ``tests/e2e/test_cli_deployment.py``."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from rich.console import Console

from devtools.emulator.auth import mint_token
from devtools.emulator.credential import AsyncEmulatorCredential
from shared.cli import main
from shared.cli._deployment import deployment_key, deployment_settings, load_settings_file
from shared.cli._deployment_retire import render_verdict
from shared.cli._retire import render_retirement
from shared.cli._status_deployment import render_status_page
from shared.composition import VIA_CLI, Caller, operator_caller
from shared.composition._operator import caller_from_claims, unverified_claims
from shared.crypto import VaultAllowList
from shared.errors import ConfigurationError
from shared.rewrap import JobState, JobStatus, RetirementReport, VersionRetirement
from shared.services._render import job_json, retirement_json
from shared.settings import PUBLIC_ARM_ENDPOINT
from tests.rewrap.fakes import KEY_REF, V1, V2, V3

ROTATED = datetime(2026, 12, 6, 16, 0, tzinfo=UTC)
OID = "00000000-0000-0000-0000-0000000000aa"
TID = "00000000-0000-0000-0000-0000000000bb"

REPORTS = {
    "late writers": RetirementReport(KEY_REF, V2, (
        VersionRetirement(V1, enabled=True, superseded_at=ROTATED,
                          answerable_at=ROTATED + timedelta(seconds=155), too_soon=True),
        VersionRetirement(V2, enabled=True, newest=True),
    )),
    "every blocker": RetirementReport(KEY_REF, V3, (
        VersionRetirement(V1, current=3, previous=2, unreadable=1, extra={"blob versions": 4},
                          pinned=("/subscriptions/s/face/a",), enabled=None, copies=25,
                          copy_names=tuple(f"container/blob-{i}" for i in range(20)),
                          jobs=("job-a", "job-b"), retired=True,
                          by_store=(("table:deks", 3, 2, 0), ("blob:c", 0, 0, 25))),
        VersionRetirement(V2, previous=7, enabled=False, jobs=("job-a", "job-b")),
        VersionRetirement(V3, enabled=True, newest=True, jobs=("job-a", "job-b")),
    ), stores=("table:deks", "blob:c"), jobs=("job-a", "job-b"), retired=frozenset({V1})),
    "safe": RetirementReport(KEY_REF, V2, (
        VersionRetirement(V1, enabled=True),
        VersionRetirement(V2, enabled=True, newest=True),
    )),
}  # fmt: skip


def _text(render: object, value: object) -> str:
    console = Console(record=True, width=300)
    render(console, value)  # type: ignore[operator]
    return console.export_text()


@pytest.mark.parametrize("name", list(REPORTS))
def test_the_deployment_verdict_renders_as_the_embedded_report_it_was_made_from(name: str) -> None:
    """The deployment's verdict arrives as ``retirement_json`` (the operation's result); the
    operator sees exactly what the embedded mode shows for the same report."""
    report = REPORTS[name]
    assert _text(render_verdict, retirement_json(report)) == _text(render_retirement, report)


def test_the_operator_is_named_by_their_tokens_claims_never_by_the_token() -> None:
    token, _ = mint_token(OID, "https://management.azure.com", tenant_id=TID)
    assert caller_from_claims(unverified_claims(token)) == Caller(OID, TID, "", (), VIA_CLI)
    claims = {"oid": OID, "tid": TID, "upn": "ops@contoso.com", "roles": ["b", "a"]}
    assert caller_from_claims(claims) == Caller(OID, TID, "ops@contoso.com", ("a", "b"), VIA_CLI)
    secret = "not-a-jwt-but-secret"
    with pytest.raises(ConfigurationError) as refused:
        unverified_claims(secret)
    assert secret not in str(refused.value)
    with pytest.raises(ConfigurationError, match="oid"):
        caller_from_claims({"tid": TID})


async def test_the_operator_caller_comes_from_an_arm_token_of_their_credential() -> None:
    credential = AsyncEmulatorCredential(OID, tenant_id=TID)
    caller = await operator_caller(credential, PUBLIC_ARM_ENDPOINT)
    assert (caller.object_id, caller.tenant_id, caller.via) == (OID, TID, VIA_CLI)
    assert credential.requests == 1


def test_a_vault_name_takes_its_url_from_the_deployments_allow_list() -> None:
    allow_list = VaultAllowList.parse("dev-kv=https://127.0.0.1:8443,contoso-kv")
    assert deployment_key(allow_list, "dev-kv", "orders") == "https://127.0.0.1:8443/keys/orders"
    assert (
        deployment_key(allow_list, "contoso-kv", "orders")
        == "https://contoso-kv.vault.azure.net/keys/orders"
    )
    with pytest.raises(ConfigurationError):
        deployment_key(allow_list, "dev-kv", "not a key")


def test_the_settings_file_is_read_as_local_settings_json(tmp_path: Path) -> None:
    path = tmp_path / "local.settings.json"
    path.write_text(json.dumps({"IsEncrypted": False, "Values": {"A": "1", "B": None}}))
    assert load_settings_file(path) == {"A": "1", "B": ""}
    path.write_text(json.dumps({"IsEncrypted": True, "Values": {"A": "CfDJ8..."}}))
    with pytest.raises(ConfigurationError, match="func settings decrypt"):
        load_settings_file(path)
    path.write_text('{"Values": {"AzureWebJobsStorage": "AccountKey=s3cret"')
    with pytest.raises(ConfigurationError) as refused:
        load_settings_file(path)
    assert "s3cret" not in str(refused.value)


def _run(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    return main(list(argv), Console(file=out, width=300)), out.getvalue()


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        (["status", "--limit", "5"], "--limit: only with --deployment"),
        (["rewrap", "--vault", "kv", "--key", "k", "--wait"], "--wait: only with --deployment"),
        (["rewrap", "--deployment", "--vault", "kv", "--key", "k", "--store", "sqlite:x"],
         "--store: not with --deployment"),
        (["retirement", "--deployment", "--vault", "kv", "--key", "k", "--pinned", "p.json"],
         "--pinned: not with --deployment"),
    ],
)  # fmt: skip
def test_options_of_the_other_mode_are_refused_before_anything_is_opened(
    argv: list[str], said: str
) -> None:
    code, text = _run(*argv)
    assert code == 2
    assert said in text


def test_settings_come_from_the_file_not_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KEYWARD_VAULT_ALLOWLIST", "contoso-kv")
    path = tmp_path / "local.settings.json"
    path.write_text(json.dumps({"Values": {"KEYWARD_VAULT_ALLOWLIST": ""}}))
    code, text = _run("status", "--settings", str(path))
    assert code == 2
    assert "KEYWARD_VAULT_ALLOWLIST" in text


def test_the_status_page_renders_every_part_it_has() -> None:
    state = JobState("job-1", KEY_REF, V2, f"{KEY_REF}/{V2}", JobStatus.COMPLETED_WITH_FAILURES,
                     ROTATED, ROTATED, scope="table:deks", attempts=1,
                     next_attempt_at=ROTATED + timedelta(minutes=5))  # fmt: skip
    page = {
        "jobs": [job_json(state)],
        "continuation": "TOKEN",
        "face_flags": [{"account_id": "/subscriptions/s/face/a", "status": "ACCESS_LOST",
                        "reasons": [["KEY_DISABLED", ""]], "key_id": f"{KEY_REF}/{V1}",
                        "last_change": ROTATED.isoformat()}],
        "face_flags_more": True,
        "rejected_events": [{"reason": "FOREIGN_VAULT", "detail": "other-kv", "event_id": "e-1",
                             "received_at": ROTATED.isoformat()}],
        "retirement": {"keys": [KEY_REF], "verdict": "..."},
        "shards": ["table:deks", "table:keks"],
        "modes": {"table:deks": "hierarchy", "table:keks": "intermediate-keys"},
        "store_jobs": {"table:deks": {"kind": "rotate_keks", "phase": "rewrap"}},
        "dead_letters": {"enabled": True, "container": "deadletters", "vaults": {
            "contoso-kv": {"events": 2, "oldest": "a", "newest": "b",
                           "reasons": {"MaxDeliveryAttemptsExceeded": 2}}},
            "malformed": [], "more": False, "limit": 50},
        "audit": [{"at": ROTATED.isoformat(), "action": "retire", "target": KEY_REF,
                   "caller": Caller(OID, TID, "ops@contoso.com", (), VIA_CLI).to_dict(),
                   "outcome": "accepted", "operation_id": "op-1", "detail": ""}],
    }  # fmt: skip
    text = _text(render_status_page, page)
    for shown in ("job-1", "completed_with_failures (scheduled)", "--continuation TOKEN",
                  "rotate_keks rewrap", "intermediate-keys", "face flags (1 shown, more exist)",
                  "ACCESS_LOST", "KEY_DISABLED", "FOREIGN_VAULT", "contoso-kv",
                  "MaxDeliveryAttemptsExceeded 2", "keyward replay-dead-letters",
                  "keyward retirement --deployment", "ops@contoso.com", "op-1"):  # fmt: skip
        assert shown in text, shown


def test_the_operator_never_takes_the_function_apps_identity(tmp_path: Path) -> None:
    """The Function App's user-assigned identity (``AZURE_CLIENT_ID``) is not the operator's:
    the CLI's credential is whatever ``DefaultAzureCredential`` finds for the operator."""
    path = tmp_path / "local.settings.json"
    values = {"KEYWARD_VAULT_ALLOWLIST": "contoso-kv", "AzureWebJobsStorage":
              "UseDevelopmentStorage=true", "AZURE_CLIENT_ID": OID}  # fmt: skip
    path.write_text(json.dumps({"Values": values}))
    settings = deployment_settings(path)
    assert settings.azure_client_id is None
    assert settings.vault_allowlist.allows_name("contoso-kv")
