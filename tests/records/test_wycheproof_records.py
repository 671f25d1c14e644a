"""Wycheproof's AES-KW vectors through the record path of hierarchy mode.

``tests/crypto/test_wycheproof.py`` already runs every ``aes_wrap_test.json`` vector through
``LocalAesKeyWrapper`` (the primitive). What it cannot show is what a *record* does with
them: here each 256-bit vector becomes a format-2 row (``WrappedKey`` = the vector's
ciphertext) under a KEK equal to the vector's key, stored in the KEK table wrapped by the
(fake) vault, and the record is opened with ``Envelope.decrypt``:

* valid, 40 bytes: the unwrapped DEK is the vector's message and opens the sealed data;
* invalid, 40 bytes: ``IntegrityError`` (the RFC 3394 check fails), nothing returned;
* any other length: the row is refused as unusable before any unwrap (a format-2 wrap is
  exactly 40 bytes) with ``InvalidInputError``.
"""

from __future__ import annotations

import base64
from collections import Counter

from shared.adapters.sqlite_records import SqliteRecords
from shared.crypto import DataKey, key_check_value, seal
from shared.errors import IntegrityError, InvalidInputError
from shared.records import FIRST_KEK_VERSION, Envelope, ModeRecord, StoreMode
from shared.stores import NewDek
from tests.crypto import wycheproof as wp
from tests.records.conftest import EnvelopeFactory
from tests.records.vault import LocalVaultKeys

PINNED = {
    ("valid", "opened"): 4,
    ("invalid", "integrity-error"): 12,
    ("valid", "refused-length"): 9,
    ("invalid", "refused-length"): 42,
    ("acceptable", "refused-length"): 1,
}


async def test_aes_kw_256_vectors_through_format_2_records(
    make_envelope: EnvelopeFactory, sqlite: SqliteRecords, vault: LocalVaultKeys
) -> None:
    wrapper = vault.versions[0]
    vectors = [v for v in wp.vectors(wp.AES_KW) if v.group["keySize"] == 256]
    for vector in vectors:
        partition = f"wp{vector.test['tcId']}"
        kek = DataKey(vector.hex("key"))
        wrapped_kek = wrapper.wrap(kek)
        new = NewDek(partition, FIRST_KEK_VERSION, wrapper.key_id, wrapper.algorithm,
                     wrapped_kek, kek.kcv)  # fmt: skip
        await sqlite.keks.insert_kek(new)
        message = vector.hex("msg")
        kcv = key_check_value(message) if message else "0" * 16
        sealed = b"\x01" * 29
        if len(message) == 32:
            sealed = seal(DataKey(message), b"payload", dek_id=f"{partition}/r")
        sqlite.database.execute(
            "INSERT INTO deks (partition, dek_id, format, key_ref, key_version, key_id,"
            " kek_version, algorithm, wrapped, kcv, sealed, created_at, updated_at)"
            " VALUES (?, 'r', 2, '', '', '', ?, 'A256KW', ?, ?, ?, '', '')",
            (partition, FIRST_KEK_VERSION, base64.b64encode(vector.hex("ct")).decode(), kcv,
             sealed),
        )  # fmt: skip

    await sqlite.modes.write_mode(ModeRecord(StoreMode.HIERARCHY))
    envelope = make_envelope(StoreMode.HIERARCHY)
    outcomes = Counter([(v.verdict, await _outcome(envelope, v)) for v in vectors])
    assert dict(outcomes) == PINNED
    assert sum(outcomes.values()) == len(vectors)


async def _outcome(envelope: Envelope, vector: wp.Vector) -> str:
    partition = f"wp{vector.test['tcId']}"
    try:
        plaintext = await envelope.decrypt(partition, "r")
    except IntegrityError:
        assert len(vector.hex("ct")) == 40, vector.id
        return "integrity-error"
    except InvalidInputError as error:
        refused = "cannot be used" in str(error) and len(vector.hex("ct")) != 40
        return "refused-length" if refused else f"unexpected: {error}"
    assert plaintext == b"payload", vector.id
    return "opened"
