"""The operator CLI end to end: SQLite DEK store, SQLite job store, local (development) keys."""

from __future__ import annotations

import asyncio
import io
import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from rich.console import Console

from devtools.cli_local import main as local_cli
from devtools.seed import open_sealed, seed_deks
from shared.composition import parse_store_spec
from shared.crypto import LocalRsaWrapper
from shared.errors import ConfigurationError
from shared.stores import SqliteDekStore
from tests.rewrap.fakes import KEY_REF, V1, V2, rsa_key

VAULT = "contoso-kv"
COUNT = 25


def _write_local_keys(directory: Path, *, v2_enabled: bool = True) -> None:
    versions = []
    for index, (version, enabled) in enumerate(((V1, True), (V2, v2_enabled))):
        pem = rsa_key(index).private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        (directory / f"{version}.pem").write_bytes(pem)
        versions.append(
            {
                "version": version,
                "enabled": enabled,
                "created": f"2026-01-0{index + 1}T00:00:00+00:00",
                "pem": f"{version}.pem",
            }
        )
    (directory / "manifest.json").write_text(
        json.dumps({"keys": [{"key": KEY_REF, "versions": versions}]})
    )


def _wrapper(version: str, index: int) -> LocalRsaWrapper:
    return LocalRsaWrapper(f"{KEY_REF}/{version}", private_key=rsa_key(index))


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    keys = tmp_path / "keys"
    keys.mkdir()
    _write_local_keys(keys)
    store = SqliteDekStore(tmp_path / "deks.sqlite")
    asyncio.run(
        seed_deks(
            store, _wrapper(V1, 0), COUNT, partitions=3, plaintext=lambda i: f"record {i}".encode()
        )
    )
    asyncio.run(store.close())
    return tmp_path


def _run(workspace: Path, *args: str) -> tuple[int, str]:
    output = io.StringIO()
    console = Console(file=output, width=220, force_terminal=False, color_system=None)
    common = ["--store", f"sqlite:{workspace / 'deks.sqlite'}"]
    jobs = ["--jobs", str(workspace / "jobs.sqlite")]
    command = args[0]
    extra = common if command in ("rewrap", "retirement", "retire") else []
    if command in ("rewrap", "status", "retire"):
        extra = extra + jobs
    # The development mode: the CLI with local keys injected (devtools, not the product).
    code = local_cli([*args, *extra, "--local-keys", str(workspace / "keys")], console=console)
    return code, output.getvalue()


def _sealed_records_open_under(workspace: Path, version: str, index: int) -> list[bytes]:
    async def go() -> list[bytes]:
        store = SqliteDekStore(workspace / "deks.sqlite")
        opened = []
        page = await store.scan(KEY_REF, exclude_version=None, page_size=1000)
        for record in page.records:
            assert record.key_id.endswith(version)
            details = await store.get(record.ref)
            assert details is not None
            opened.append(open_sealed(details, _wrapper(version, index)))
        await store.close()
        return opened

    return asyncio.run(go())


def test_dry_run_counts_and_writes_nothing(workspace: Path) -> None:
    code, out = _run(workspace, "rewrap", "--vault", VAULT, "--key", "payments", "--dry-run")

    assert code == 0
    assert f"rewrap from {V1}" in out
    assert "25 vault operations" in out
    assert "nothing was written" in out
    assert len(_sealed_records_open_under(workspace, V1, 0)) == COUNT
    assert not (workspace / "jobs.sqlite").exists()


def test_rewrap_then_status_then_retirement(workspace: Path) -> None:
    code, out = _run(workspace, "rewrap", "--vault", VAULT, "--key", "payments", "--to", V2)

    assert code == 0, out
    assert "completed" in out
    assert "rewrapped" in out
    opened = _sealed_records_open_under(workspace, V2, 1)
    assert sorted(opened) == sorted(f"record {i}".encode() for i in range(COUNT))

    again_code, again = _run(workspace, "rewrap", "--vault", VAULT, "--key", "payments")
    assert again_code == 0
    assert "already completed" in again

    status_code, status = _run(workspace, "status", "--vault", VAULT, "--key", "payments")
    assert status_code == 0
    assert "completed" in status
    assert V2 in status

    retire_code, retire = _run(workspace, "retirement", "--vault", VAULT, "--key", "payments")
    assert retire_code == 0
    v1_line = next(line for line in retire.splitlines() if V1 in line)
    assert "no" in v1_line  # V1 is still every DEK's previous wrap
    assert "(newest)" in next(line for line in retire.splitlines() if V2 in line)


def test_retire_records_the_version_and_later_rewraps_refuse_it(workspace: Path) -> None:
    refused_code, refused = _run(
        workspace, "retire", "--vault", VAULT, "--key", "payments", "--version", V1
    )
    assert refused_code == 3  # every DEK is still wrapped under V1
    assert f"{COUNT} DEKs wrapped under it" in refused
    assert _run(workspace, "rewrap", "--vault", VAULT, "--key", "payments")[0] == 0

    code, out = _run(workspace, "retire", "--vault", VAULT, "--key", "payments", "--version", V1)

    assert code == 0, out
    assert f"{COUNT} previous wraps dropped; safe to disable" in out
    _, report = _run(
        workspace, "retirement", "--vault", VAULT, "--key", "payments",
        "--jobs", str(workspace / "jobs.sqlite"), "--json",
    )  # fmt: skip
    (v1,) = [v for v in json.loads(report)["versions"] if v["version"] == V1]
    assert (v1["retired"], v1["status"]) == (True, "safe_to_disable")


def test_json_output_and_job_details(workspace: Path) -> None:
    code, out = _run(workspace, "rewrap", "--vault", VAULT, "--key", "payments", "--json")
    assert code == 0
    report = json.loads(out)
    assert report["counters"]["rewrapped"] == COUNT
    assert report["status"] == "completed"

    code, detail = _run(workspace, "status", "--job", report["job_id"], "--json")
    assert code == 0
    assert json.loads(detail)["job_id"] == report["job_id"]


def test_output_never_contains_key_material(workspace: Path) -> None:
    async def plaintext_deks() -> list[bytes]:
        store = SqliteDekStore(workspace / "deks.sqlite")
        page = await store.scan(KEY_REF, exclude_version=None, page_size=1000)
        wrapper = _wrapper(V1, 0)
        deks = [wrapper.unwrap(record.wrapped).reveal() for record in page.records]
        await store.close()
        return deks

    deks = asyncio.run(plaintext_deks())
    outputs = [
        _run(workspace, "rewrap", "--vault", VAULT, "--key", "payments", "--dry-run")[1],
        _run(workspace, "rewrap", "--vault", VAULT, "--key", "payments", "--json")[1],
        _run(workspace, "status", "--json")[1],
    ]
    for dek in deks:
        for out in outputs:
            assert dek.hex() not in out
            assert dek.hex().upper() not in out


def test_refused_target_is_an_error_not_a_traceback(workspace: Path) -> None:
    code, out = _run(workspace, "rewrap", "--vault", VAULT, "--key", "payments", "--to", "9" * 32)
    assert code == 1
    assert "does not exist" in out
    assert "Traceback" not in out


def test_bad_options_are_usage_errors(workspace: Path) -> None:
    code, out = _run(workspace, "rewrap", "--vault", "not a vault!", "--key", "payments")
    assert code == 2
    assert "error" in out
    code, out = _run(workspace, "status", "--job", "rewrap-none")
    assert code == 2


def test_store_spec_keeps_connection_strings_out_of_its_repr() -> None:
    connection = "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;TableEndpoint=http://127.0.0.1:10002/devstoreaccount1"
    spec = parse_store_spec(f"table:{connection}:deks")
    assert (spec.kind, spec.location, spec.connection_string) == ("table", "deks", connection)
    assert "AccountName" not in repr(spec)
    assert str(spec) == "table:deks"
    with pytest.raises(ConfigurationError):
        parse_store_spec("ftp:somewhere")


def test_module_entry_point_shows_help() -> None:
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-m", "shared.cli", "--help"],
        cwd=Path(__file__).resolve().parents[1],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0
    for command in ("rewrap", "status", "retirement"):
        assert command in result.stdout


def test_issues_file_lists_every_dek_not_rewrapped(workspace: Path) -> None:
    keys = workspace / "keys"
    manifest = json.loads((keys / "manifest.json").read_text())
    manifest["keys"][0]["versions"][0]["enabled"] = False  # V1 disabled: unwraps refused
    (keys / "manifest.json").write_text(json.dumps(manifest))
    issues = workspace / "issues.jsonl"

    code, out = _run(
        workspace, "rewrap", "--vault", VAULT, "--key", "payments", "--issues", str(issues)
    )

    assert code == 3, out
    lines = [json.loads(line) for line in issues.read_text().splitlines()]
    assert len(lines) == COUNT
    assert {line["reason"] for line in lines} == {"key_disabled"}
    assert {line["outcome"] for line in lines} == {"unreadable"}


class _ReplayAdmin:
    """The admin service's replay, over in-memory dead letters: records who asked."""

    def __init__(self, replay: Any) -> None:
        self.replay = replay
        self.callers: list[Any] = []

    async def replay_dead_letters(
        self, *, vault: str | None, dry_run: bool, max_blobs: int, caller: Any
    ) -> Any:
        self.callers.append(caller)
        return await self.replay.replay(vault=vault, dry_run=dry_run, max_blobs=max_blobs)


class _ReplayContext:
    """A deployment context whose dead letters are in memory (tests/services), reached with
    an emulator credential whose token names the operator."""

    def __init__(self, replay: object, operator: str) -> None:
        from devtools.emulator.credential import AsyncEmulatorCredential
        from shared.settings import PUBLIC_ARM_ENDPOINT

        self.replay_admin = _ReplayAdmin(replay)
        self.credential = AsyncEmulatorCredential(operator)
        self.settings = SimpleNamespace(arm_endpoint=PUBLIC_ARM_ENDPOINT)
        self.closed = False

    def admin(self) -> _ReplayAdmin:
        return self.replay_admin

    async def aclose(self) -> None:
        self.closed = True


def test_replay_dead_letters_renders_each_blob_and_says_what_needs_attention() -> None:
    from shared.cli import main as cli_main
    from shared.services.dead_letters import DeadLetterReplay
    from tests.services.test_dead_letters import _blob, _event, _Handler, _Source

    source = _Source({"A/ok.json": _blob(_event("kv-a", "ok")),
                      "A/bad.json": _blob(_event("kv-a", "bad")), "A/junk.json": b"{"})  # fmt: skip
    operator = "00000000-0000-0000-0000-0000000000a1"
    context = _ReplayContext(DeadLetterReplay(source, _Handler({"bad": "rejected"})), operator)

    async def opener() -> object:
        return context

    out = io.StringIO()
    code = cli_main(["replay-dead-letters"], Console(file=out, width=300),
                    open_context=opener)  # type: ignore[arg-type]  # fmt: skip
    text = out.getvalue()
    assert code == 3  # a rejected and an unreadable blob need a person
    assert "A/ok.json" in text
    assert "handled" in text
    assert "kept under rejected/" in text
    assert "unreadable, kept: not JSON" in text
    assert context.closed
    assert source.moved == {"A/ok.json": "replayed/", "A/bad.json": "rejected/"}
    # The replay went through the audited service with the operator as its caller.
    (caller,) = context.replay_admin.callers
    assert (caller.object_id, caller.via) == (operator, "cli")


def test_a_dry_run_replay_names_no_caller_and_moves_nothing() -> None:
    from shared.cli import main as cli_main
    from shared.services.dead_letters import DeadLetterReplay
    from tests.services.test_dead_letters import _blob, _event, _Handler, _Source

    source = _Source({"A/ok.json": _blob(_event("kv-a", "ok"))})
    context = _ReplayContext(DeadLetterReplay(source, _Handler({})), "op")

    async def opener() -> object:
        return context

    out = io.StringIO()
    code = cli_main(["replay-dead-letters", "--dry-run"], Console(file=out, width=300),
                    open_context=opener)  # type: ignore[arg-type]  # fmt: skip
    assert code == 0, out.getvalue()
    assert context.replay_admin.callers == [None]
    assert source.moved == {}


def test_replay_dead_letters_without_the_deployments_settings_is_a_usage_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from shared.cli import main as cli_main

    monkeypatch.delenv("KEYWARD_VAULT_ALLOWLIST", raising=False)
    out = io.StringIO()
    assert cli_main(["replay-dead-letters", "--dry-run"], Console(file=out, width=300)) == 2
    assert "KEYWARD_VAULT_ALLOWLIST" in out.getvalue()
