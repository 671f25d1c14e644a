"""``keyward migrate`` and ``keyward rotate-keks`` end to end: a SQLite store written by the
Envelope, local (development) keys, the CLI's output and exit codes."""

from __future__ import annotations

import asyncio
import functools
import io
import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from rich.console import Console

from devtools.cli_local import main as local_cli
from devtools.local_keys import load_local_keys
from shared.adapters.sqlite_records import SqliteRecords
from shared.records import Envelope, EnvelopeSettings, RecordFormat, StoreMode
from shared.services.migration import KeySourceVaultKeys, StoreJobs
from tests.rewrap.fakes import KEY_REF, V1, V2, rsa_key

VAULT = "contoso-kv"
NO_WAIT = ("--mode-ttl", "0", "--kek-ttl", "0")
PLAIN = {(f"t{i % 2}", f"r{i}"): f"record {i}".encode() for i in range(9)}


def _keys(directory: Path) -> None:
    versions = []
    for index, version in enumerate((V1, V2)):
        pem = rsa_key(index).private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        (directory / f"{version}.pem").write_bytes(pem)
        versions.append({"version": version, "enabled": True, "pem": f"{version}.pem",
                         "created": f"2026-01-0{index + 1}T00:00:00+00:00"})  # fmt: skip
    (directory / "manifest.json").write_text(
        json.dumps({"keys": [{"key": KEY_REF, "versions": versions}]})
    )


async def _envelope_io(workspace: Path, *, write: bool) -> None:
    store = SqliteRecords.open(workspace / "records.sqlite")
    vault = KeySourceVaultKeys(load_local_keys(workspace / "keys"))
    async with Envelope(store.records, store.keks, store.modes, vault, KEY_REF) as envelope:
        for (partition, record_id), data in PLAIN.items():
            if write:
                await envelope.encrypt(partition, record_id, data)
            else:
                assert await envelope.decrypt(partition, record_id) == data
    await store.aclose()


async def _state(workspace: Path) -> tuple[StoreMode, set[RecordFormat]]:
    store = SqliteRecords.open(workspace / "records.sqlite")
    mode = (await store.modes.read_mode()).mode
    page = await store.records.scan_records()
    await store.aclose()
    return mode, {row.format for row in page.records}


@pytest.fixture(autouse=True)
def _no_late_writers(monkeypatch: pytest.MonkeyPatch) -> None:
    """This test's writers finish before each job: no write bound to wait out (the CLI's
    jobs otherwise wait ``MAX_WRITE_SECONDS`` before counting)."""
    monkeypatch.setattr(
        "shared.cli._jobs.StoreJobs", functools.partial(StoreJobs, max_write_seconds=0.0)
    )


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    (tmp_path / "keys").mkdir()
    _keys(tmp_path / "keys")
    asyncio.run(_envelope_io(tmp_path, write=True))
    return tmp_path


def _cli(workspace: Path, *args: str) -> tuple[int, str]:
    output = io.StringIO()
    console = Console(file=output, width=200, force_terminal=False, color_system=None)
    argv = [*args, "--vault", VAULT, "--key", "payments",
            "--store", f"sqlite:{workspace / 'records.sqlite'}",
            "--local-keys", str(workspace / "keys")]  # fmt: skip
    return local_cli(argv, console=console), output.getvalue()


def test_migrate_both_ways_and_rotate_keks(workspace: Path) -> None:
    code, out = _cli(workspace, "migrate", "--to", "hierarchy", *NO_WAIT)
    assert code == 0, out
    assert "done" in out
    assert "records converted 9" in out
    assert asyncio.run(_state(workspace)) == (StoreMode.HIERARCHY, {RecordFormat.HIERARCHY})

    code, out = _cli(workspace, "migrate", "--to", "hierarchy", *NO_WAIT)
    assert code == 0
    assert "nothing to do: the store is in hierarchy mode" in out

    code, out = _cli(workspace, "rotate-keks", "--older-than", "0.000001", "--kek-ttl", "0",
                     "--json")  # fmt: skip
    assert code == 0, out
    answer = json.loads(out)
    assert answer["job"]["kind"] == "rotate-keks"
    assert answer["job"]["tally"]["keks_created"] == 2
    assert answer["job"]["tally"]["keks_deleted"] == 2
    asyncio.run(_envelope_io(workspace, write=False))

    code, out = _cli(workspace, "migrate", "--to", "direct", *NO_WAIT)
    assert code == 0, out
    assert "KEKs created 0, deleted 2" in out
    assert asyncio.run(_state(workspace)) == (StoreMode.DIRECT, {RecordFormat.DIRECT})
    asyncio.run(_envelope_io(workspace, write=False))


def test_a_live_runner_makes_a_second_one_exit_busy(workspace: Path) -> None:
    class Stop(BaseException):
        pass

    def stop(point: str) -> None:
        if point == "job.mode_set":
            raise Stop

    async def crash() -> None:
        store = SqliteRecords.open(workspace / "records.sqlite")
        vault = KeySourceVaultKeys(load_local_keys(workspace / "keys"))
        jobs = StoreJobs(store.records, store.keks, store.modes, vault, owner="host-a:42",
                         settings=EnvelopeSettings(mode_ttl_seconds=0), probe=stop)  # fmt: skip
        with pytest.raises(Stop):
            await jobs.migrate(StoreMode.HIERARCHY, KEY_REF)
        await store.aclose()

    asyncio.run(crash())
    code, out = _cli(workspace, "migrate", "--to", "hierarchy", *NO_WAIT)
    assert code == 1
    assert "busy" in out
    assert "host-a:42" in out


def test_stores_without_records_are_refused_as_usage_errors(workspace: Path) -> None:
    output = io.StringIO()
    console = Console(file=output, width=200, force_terminal=False, color_system=None)
    code = local_cli(["rotate-keks", "--vault", VAULT, "--key", "payments", "--store",
                      "blob:UseDevelopmentStorage=true:c", "--local-keys",
                      str(workspace / "keys")], console=console)  # fmt: skip
    assert code == 2
    assert "hold no application records" in output.getvalue()
