"""Fixtures for the records tests: RSA keys (made once), a fake vault, SQLite ports, a clock."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from shared.adapters.sqlite_records import SqliteRecords
from shared.records import Envelope, EnvelopeSettings, StoreMode
from tests.records.vault import KEY_REF, LocalVaultKeys


class FakeClock:
    """Monotonic seconds the test moves by hand."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture(scope="session")
def rsa_keys() -> list[rsa.RSAPrivateKey]:
    return [rsa.generate_private_key(public_exponent=65537, key_size=2048) for _ in range(3)]


@pytest.fixture
def vault(rsa_keys: list[rsa.RSAPrivateKey]) -> LocalVaultKeys:
    return LocalVaultKeys(rsa_keys)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def sqlite(tmp_path: Path) -> AsyncIterator[SqliteRecords]:
    ports = SqliteRecords.open(tmp_path / "records.sqlite")
    yield ports
    await ports.aclose()


EnvelopeFactory = Callable[..., Envelope]


@pytest.fixture
def make_envelope(
    sqlite: SqliteRecords, vault: LocalVaultKeys, clock: FakeClock
) -> EnvelopeFactory:
    """An envelope over the test's SQLite file and fake vault (settings overridable)."""

    def make(mode: StoreMode | None = None, **settings: float) -> Envelope:
        return Envelope(
            sqlite.records, sqlite.keks, sqlite.modes, vault, KEY_REF,
            mode=mode, settings=EnvelopeSettings(**settings), clock=clock,  # type: ignore[arg-type]
        )  # fmt: skip

    return make
