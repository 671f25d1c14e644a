"""The operator CLI on a hierarchy-mode store: the KEK table is just another ``--store``
(``table::NAME``, ``sqlite:PATH:keks``), so the dry run, the retirement verdict and the rewrap
of a vault rotation work on intermediate keys unchanged; the data table in hierarchy mode has
nothing for them. Key Vault is the emulator (the CLI's key source, with its credential)."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

import pytest
from rich.console import Console

from keyward import open_envelope
from shared.adapters import AsyncKeyVaultAdapter
from shared.cli import main as cli_main
from shared.cli._factories import Closer, KeyTarget
from shared.rewrap import KeyVersionSource
from tests.application.conftest import KEY_NAME, PROOF_UNWRAPS_PER_RUN, AppWorld

pytestmark = [pytest.mark.azurite, pytest.mark.emulator]

DATA = {(f"t{p}", f"r{i}"): f"{p}/{i}".encode() for p in range(3) for i in range(4)}


def _cli(world: AppWorld, tmp_path: Path, store: str, *args: str) -> tuple[int, str]:
    async def open_keys(
        target: KeyTarget, ca_bundle: str | None
    ) -> tuple[KeyVersionSource, Closer]:
        adapter = AsyncKeyVaultAdapter(world.vault.async_credential(), target.allow_list,
                                       ca_bundle=world.vault.emulator.ca_path)  # fmt: skip
        return adapter, adapter.close

    output = io.StringIO()
    console = Console(file=output, width=220, force_terminal=False, color_system=None)
    command = [*args, "--vault", world.allow_list, "--key", KEY_NAME, "--store", store]
    if args[0] == "rewrap" and "--dry-run" not in args:
        command += ["--jobs", str(tmp_path / "jobs.sqlite")]
    code = cli_main(command, console, open_keys=open_keys)
    return code, output.getvalue()


async def _seed(world: AppWorld, **store: str) -> None:
    async with open_envelope(world.key_ref, mode="hierarchy", **world.options(**store)) as env:
        for (tenant, record_id), data in DATA.items():
            await env.encrypt(tenant, record_id, data)


async def _all_open(world: AppWorld, **store: str) -> None:
    async with open_envelope(world.key_ref, **world.options(**store)) as envelope:
        for (tenant, record_id), data in DATA.items():
            assert await envelope.decrypt(tenant, record_id) == data


def _rotate_and_rewrap(world: AppWorld, tmp_path: Path, keks: str, data: str) -> None:
    world.vault.client.rotate_key(world.vault.name, KEY_NAME)
    code, out = _cli(world, tmp_path, keks, "rewrap", "--dry-run")
    assert code == 0, out
    assert "3 vault operations" in out
    code, out = _cli(world, tmp_path, data, "rewrap", "--dry-run")
    assert code == 0, out
    assert "0 vault operations" in out
    code, out = _cli(world, tmp_path, keks, "retirement")
    assert code == 0, out
    world.reset_counters()
    code, out = _cli(world, tmp_path, keks, "rewrap")
    assert code == 0, out
    assert "completed" in out
    assert world.unwraps() == 3 + PROOF_UNWRAPS_PER_RUN  # the KEKs, and the target's proof


def test_the_cli_rotates_the_kek_table(world: AppWorld, tmp_path: Path) -> None:
    asyncio.run(_seed(world))
    conn = world.connection_string
    _rotate_and_rewrap(world, tmp_path, f"table:{conn}:{world.kek_table}",
                       f"table:{conn}:{world.table}")  # fmt: skip
    asyncio.run(_all_open(world))


def test_the_cli_rotates_a_sqlite_files_keks(world: AppWorld, tmp_path: Path) -> None:
    path = str(tmp_path / "app.sqlite")
    asyncio.run(_seed(world, sqlite_path=path, connection_string=""))
    _rotate_and_rewrap(world, tmp_path, f"sqlite:{path}:keks", f"sqlite:{path}")
    asyncio.run(_all_open(world, sqlite_path=path, connection_string=""))
