"""The record format, pinned with fixed bytes: change these only with a new format number.

A256KW (RFC 3394) has no nonce, so a fixed DEK under a fixed KEK gives one exact
``WrappedKey``; the sealed data is pinned by fixing the envelope's nonce through a seam
(the ``os`` the crypto modules draw from). The KEK row itself is RSA-OAEP (randomised), so
only its deterministic parts are pinned.
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import pytest

import shared.crypto._data_key as data_key_module
import shared.crypto._envelope as envelope_module
from shared.adapters.sqlite_records import SqliteRecords
from shared.crypto import DataKey, LocalAesKeyWrapper, WrapAlgorithm
from shared.records import FIRST_KEK_VERSION, ModeRecord, RecordFormat, RecordWrite, StoreMode
from shared.records._entities import mode_entity, new_record_entity, record_from_entity
from tests.records.conftest import EnvelopeFactory
from tests.records.vault import KEY_REF, LocalVaultKeys

DEK = bytes(range(32))
KEK = bytes(range(32, 64))
NONCE = bytes(range(64, 76))
NOW = datetime(2026, 12, 6, 16, 0, tzinfo=UTC)
#: base64(RFC 3394 wrap of DEK under KEK): 40 bytes.
WRAPPED_KEY = "wam7aJrqtAiqUlC1+ieRGjTQnPLDxdsPGlTGvCdzoh3+ZODG176TUg=="
DEK_KCV = "83e0399b7535c07a"
KEK_KCV = "d40ef395ee5cda67"
#: 0x01 || nonce || AES-256-GCM("pinned plaintext", AAD(dek_id="tenant-a/record-1",
#: context=b"orders")) || tag.
SEALED = bytes.fromhex(
    "01404142434445464748494a4b92d0c04d4358a773a1a57e58ef016b2fd7d66d830d21fa85043b8c37660d3bab"
)
FORMAT_2_ENTITY: dict[str, Any] = {
    "PartitionKey": "tenant-a",
    "RowKey": "record-1",
    "Format": 2,
    "KekVersion": FIRST_KEK_VERSION,
    "Algorithm": "A256KW",
    "WrappedKey": WRAPPED_KEY,
    "Kcv": DEK_KCV,
    "Sealed": SEALED,
    "CreatedAt": NOW,
    "UpdatedAt": NOW,
}


def test_a256kw_of_the_fixed_dek_is_pinned() -> None:
    wrapped = LocalAesKeyWrapper("kek", DataKey(KEK)).wrap(DataKey(DEK))
    assert base64.b64encode(wrapped).decode() == WRAPPED_KEY
    assert DataKey(DEK).kcv == DEK_KCV
    assert DataKey(KEK).kcv == KEK_KCV


def test_rfc3394_section_4_6_known_answer() -> None:
    """RFC 3394 4.6: 256 bits of key data with a 256-bit KEK, the format-2 case exactly."""
    kek = DataKey(bytes.fromhex("000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F"))
    key = DataKey(bytes.fromhex("00112233445566778899AABBCCDDEEFF000102030405060708090A0B0C0D0E0F"))
    expected = bytes.fromhex(
        "28C9F404C4B810F4CBCCB35CFB87F8263F5786E2D80ED326CBC7F0E71A99F43BFB988B9B7A02DD21"
    )
    wrapper = LocalAesKeyWrapper("rfc3394", kek)
    assert wrapper.wrap(key) == expected
    assert wrapper.unwrap(expected).matches(key)


def test_format_2_entity_is_pinned() -> None:
    write = RecordWrite(
        "tenant-a", "record-1", RecordFormat.HIERARCHY, WrapAlgorithm.A256KW,
        base64.b64decode(WRAPPED_KEY), DEK_KCV, kek_version=FIRST_KEK_VERSION, sealed=SEALED,
    )  # fmt: skip
    entity = new_record_entity(write, NOW)
    assert entity == FORMAT_2_ENTITY
    assert list(entity) == list(FORMAT_2_ENTITY)  # property order too (readable rows)
    back = record_from_entity(entity, "etag-1")
    assert back.problem is None
    assert (back.format, back.kek_version, back.kcv) == (
        RecordFormat.HIERARCHY, FIRST_KEK_VERSION, DEK_KCV,
    )  # fmt: skip


def test_format_1_entity_is_todays_dek_row() -> None:
    key_id = f"{KEY_REF}/{'1' * 32}"
    write = RecordWrite(
        "tenant-a", "record-1", RecordFormat.DIRECT, WrapAlgorithm.RSA_OAEP_256, b"\x07" * 256,
        DEK_KCV, key_id=key_id,
    )  # fmt: skip
    assert new_record_entity(write, NOW) == {
        "PartitionKey": "tenant-a",
        "RowKey": "record-1",
        "KeyRef": KEY_REF,
        "KeyVersion": "1" * 32,
        "KeyId": key_id,
        "Algorithm": "RSA-OAEP-256",
        "WrappedKey": base64.b64encode(b"\x07" * 256).decode(),
        "Kcv": DEK_KCV,
        "CreatedAt": NOW,
        "UpdatedAt": NOW,
    }


def test_mode_entity_is_pinned() -> None:
    assert mode_entity(ModeRecord(StoreMode.HIERARCHY, changed_at=NOW), NOW) == {
        "PartitionKey": "~keyward",
        "RowKey": "mode",
        "Mode": "hierarchy",
        "ChangedAt": NOW,
    }


@pytest.fixture
def fixed_randomness(monkeypatch: pytest.MonkeyPatch) -> None:
    """DataKey.generate yields DEK then KEK; seal's nonce is NONCE."""
    keys = iter([DEK, KEK])
    monkeypatch.setattr(data_key_module, "os", SimpleNamespace(urandom=lambda n: next(keys)))
    monkeypatch.setattr(envelope_module, "os", SimpleNamespace(urandom=lambda n: NONCE))


async def test_an_envelope_writes_exactly_the_pinned_row(
    fixed_randomness: None,
    make_envelope: EnvelopeFactory,
    sqlite: SqliteRecords,
    vault: LocalVaultKeys,
) -> None:
    envelope = make_envelope(StoreMode.HIERARCHY)
    await envelope.encrypt("tenant-a", "record-1", b"pinned plaintext", context=b"orders")
    [row] = sqlite.database.run_now(
        lambda db: db.execute(
            "SELECT partition, dek_id, format, key_ref, key_version, key_id, kek_version,"
            " algorithm, wrapped, kcv, sealed, prev_key_id, unreadable FROM deks"
        ).fetchall()
    )
    assert row == (
        "tenant-a", "record-1", 2, "", "", "", FIRST_KEK_VERSION, "A256KW", WRAPPED_KEY,
        DEK_KCV, SEALED, None, None,
    )  # fmt: skip
    [kek] = await sqlite.keks.list_keks("tenant-a")
    assert (kek.version, kek.key_id, kek.algorithm, kek.kcv) == (
        FIRST_KEK_VERSION, vault.versions[0].key_id, WrapAlgorithm.RSA_OAEP_256, KEK_KCV,
    )  # fmt: skip
    assert len(kek.wrapped) == 256
    assert vault.versions[0].unwrap(kek.wrapped).reveal() == KEK
