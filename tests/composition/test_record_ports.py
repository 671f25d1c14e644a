"""One home opens a store's record ports (records, KEKs, mode row): the store jobs' ``--store``
and an application's ``open_envelope`` both go through ``shared.composition._record_ports``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from shared.application import open_envelope
from shared.composition import _record_ports
from shared.composition._record_ports import (
    RecordPorts,
    open_record_ports,
    sqlite_record_ports,
    table_record_ports,
)
from shared.errors import ConfigurationError

KEY = "https://unit.vault.azure.net/keys/app-key"
ACCOUNT = "https://account.table.core.windows.net"


class _Credential:
    """Never asked for a token: nothing here does I/O."""

    async def get_token(self, *scopes: str, **kwargs: Any) -> Any:
        raise AssertionError("no token expected")

    async def close(self) -> None:
        return None


async def test_a_table_store_by_account_url_and_credential() -> None:
    ports = table_record_ports("data", "keks", account_url=ACCOUNT, credential=_Credential())  # type: ignore[arg-type]
    try:
        assert ports.name == "table:data (KEKs in keks)"
        assert (ports.records.name, ports.keks.name) == ("table:data", "table:keks")
    finally:
        await ports.aclose()


@pytest.mark.parametrize(
    "how",
    [
        {},
        {"connection_string": "UseDevelopmentStorage=true", "account_url": ACCOUNT},
        {"account_url": ACCOUNT},
    ],
)
def test_a_table_store_needs_exactly_one_way_in(how: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError, match="connection string, or an account URL"):
        table_record_ports("data", "keks", **how)


async def test_the_cli_spec_and_the_file_open_the_same_sqlite_ports(tmp_path: Path) -> None:
    path = tmp_path / "records.sqlite"
    by_spec = open_record_ports(f"sqlite:{path}")
    by_path = sqlite_record_ports(path)
    try:
        assert by_spec.name == by_path.name == f"sqlite:{path}"
        assert by_spec.records.name == by_path.records.name
    finally:
        await by_spec.aclose()
        await by_path.aclose()


async def test_open_envelope_opens_its_ports_in_the_composition_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    opened: list[RecordPorts] = []
    real = _record_ports.sqlite_record_ports

    def spy(path: str | Path) -> RecordPorts:
        opened.append(real(path))
        return opened[-1]

    monkeypatch.setattr(_record_ports, "sqlite_record_ports", spy)
    path = str(tmp_path / "records.sqlite")
    async with open_envelope(
        KEY,
        sqlite_path=path,
        credential=_Credential(),
        allow_list="https://unit.vault.azure.net",  # type: ignore[arg-type]
    ) as envelope:
        assert [p.records.name for p in opened] == [envelope.store_name]


@pytest.mark.parametrize(
    "how",
    [
        {"connection_string": "UseDevelopmentStorage=true"},
        {"account_url": ACCOUNT, "credential": _Credential()},
    ],
)
async def test_the_table_clients_write_within_the_bound(how: dict[str, Any]) -> None:
    """Every Table client that writes records has the bounded attempts, the one retry and the
    absolute timeout ``MAX_WRITE_SECONDS`` is computed from (``_write_bound``), not the
    SDK's 300 s reads and 7-day timeout."""
    from shared.records._write_bound import (
        CONNECT_TIMEOUT_SECONDS,
        READ_TIMEOUT_SECONDS,
        WRITE_DEADLINE_SECONDS,
        WRITE_RETRIES,
    )

    ports = table_record_ports("data", "keks", **how)
    try:
        for close in ports.closers:
            pipeline = close.__self__._client._client._pipeline  # type: ignore[attr-defined]
            (retry,) = [p for p in pipeline._impl_policies if "RetryPolicy" in type(p).__name__]
            assert (retry.total_retries, retry.timeout) == (WRITE_RETRIES, WRITE_DEADLINE_SECONDS)
            config = pipeline._transport.connection_config
            assert (config.timeout, config.read_timeout) == (
                CONNECT_TIMEOUT_SECONDS,
                READ_TIMEOUT_SECONDS,
            )
    finally:
        await ports.aclose()
