"""Pure pieces of the stores: key id splitting, continuations, reasons, blob metadata JSON."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from devtools.blob_kek import BlobKeyEncryptionKey
from devtools.traffic import TrafficCounter
from shared.adapters.dek_blob._format import parse_encryption_data, rewrite_encryption_data
from shared.crypto import DataKey, LocalRsaWrapper, WrapAlgorithm
from shared.errors import InvalidInputError, UnsupportedAlgorithmError
from shared.stores._common import (
    MAX_REASON_LENGTH,
    clean_reason,
    decode_continuation,
    encode_continuation,
    split_key_id,
)
from tests.stores.conftest import KEY_REF, V1, V2, Keys

ENCRYPTION_DATA = {
    "WrappedContentKey": {
        "KeyId": f"{KEY_REF}/{V1}",
        "EncryptedKey": "AQID",
        "Algorithm": "RSA-OAEP",
    },
    "EncryptionAgent": {"Protocol": "2.0", "EncryptionAlgorithm": "AES_GCM_256"},
    "EncryptedRegionInfo": {"DataLength": 4194304, "NonceLength": 12},
    "KeyWrappingMetadata": {"EncryptionLibrary": "Python 12.31.1 \u00fcn\u00efcode"},
}


@pytest.mark.parametrize(
    ("key_id", "expected"),
    [
        (f"{KEY_REF}/{V1}", (KEY_REF, V1)),
        (f"https://KWTEST.vault.azure.net/keys/dek-kek/{V1.upper()}", (KEY_REF, V1)),
        (f"https://127.0.0.1:8443/keys/k/{V2}", ("https://127.0.0.1:8443/keys/k", V2)),
        (KEY_REF, None),
        (f"http://kwtest.vault.azure.net/keys/dek-kek/{V1}", None),
        (f"{KEY_REF}/{V1}/extra", None),
        (f"{KEY_REF}/not-a-version", None),
        (f"https://kwtest.vault.azure.net/secrets/dek-kek/{V1}", None),
        (f"{KEY_REF}/{V1}?api-version=7.5", None),
        ("local:my-key", None),
        ("", None),
    ],
)
def test_split_key_id(key_id: str, expected: tuple[str, str] | None) -> None:
    assert split_key_id(key_id) == expected


@given(st.one_of(st.text(), st.lists(st.text(), max_size=3), st.dictionaries(st.text(), st.text())))
def test_continuation_round_trip(token: object) -> None:
    assert decode_continuation("table", encode_continuation("table", token)) == token


def test_continuation_from_another_store_kind_is_refused() -> None:
    with pytest.raises(InvalidInputError, match="sqlite"):
        decode_continuation("table", encode_continuation("sqlite", ["a", "b"]))
    for garbage in ("", "%%%", "bm90IGpzb24", encode_continuation("table", 1)[:-4]):
        with pytest.raises(InvalidInputError):
            decode_continuation("table", garbage)


def test_clean_reason_is_bounded_printable_ascii() -> None:
    assert clean_reason("key\r\nX-Injected: 1") == "key??X-Injected: 1"
    assert clean_reason("é" * 1000) == "?" * MAX_REASON_LENGTH
    assert clean_reason("") == "unreadable"


@pytest.mark.parametrize(
    "style", [{}, {"separators": (",", ":")}, {"ensure_ascii": False}], ids=str
)
def test_rewrite_changes_only_the_wrap_and_keeps_the_spelling(style: dict) -> None:
    text = json.dumps(ENCRYPTION_DATA, **style)
    rewritten = rewrite_encryption_data(text, f"{KEY_REF}/{V2}", "RSA-OAEP-256", b"\x09" * 3)
    expected = json.loads(text)
    expected["WrappedContentKey"] = {
        "KeyId": f"{KEY_REF}/{V2}", "EncryptedKey": "CQkJ", "Algorithm": "RSA-OAEP-256",
    }  # fmt: skip
    assert rewritten == json.dumps(expected, **style)
    parsed = parse_encryption_data(rewritten)
    assert (parsed.key_id, parsed.wrapped, parsed.problem) == (f"{KEY_REF}/{V2}", b"\t" * 3, None)


def test_rewrite_of_unusual_spelling_keeps_the_meaning() -> None:
    text = json.dumps(ENCRYPTION_DATA, indent=2)
    rewritten = json.loads(rewrite_encryption_data(text, "kid", "A256KW", b"\x01"))
    assert rewritten["EncryptionAgent"] == ENCRYPTION_DATA["EncryptionAgent"]
    assert list(rewritten) == list(ENCRYPTION_DATA)


def test_rewrite_refuses_non_json() -> None:
    with pytest.raises(InvalidInputError):
        rewrite_encryption_data("{", "kid", "A256KW", b"\x01")


def test_blob_kek_adapts_a_keyward_wrapper(keys: Keys) -> None:
    kek = BlobKeyEncryptionKey(keys.v1)
    material = b"2.0\0\0\0\0\0" + bytes(range(32))
    wrapped = kek.wrap_key(material)
    assert kek.get_kid() == keys.v1.key_id
    assert kek.get_key_wrap_algorithm() == "RSA-OAEP-256"
    assert kek.unwrap_key(wrapped, "RSA-OAEP-256") == material
    with pytest.raises(UnsupportedAlgorithmError):
        kek.unwrap_key(wrapped, "RSA-OAEP")
    assert repr(kek) == f"BlobKeyEncryptionKey({keys.v1.key_id!r})"


def test_blob_kek_on_an_sha1_oaep_key(keys: Keys) -> None:
    private = keys.v1._private_key
    legacy = LocalRsaWrapper(keys.v1.key_id, private_key=private, algorithm=WrapAlgorithm.RSA_OAEP)
    kek = BlobKeyEncryptionKey(legacy)
    with DataKey.generate(40) as material:
        assert kek.unwrap_key(kek.wrap_key(material.reveal()), "RSA-OAEP") == material.reveal()


def test_traffic_counter_reset_and_repr() -> None:
    counter = TrafficCounter()
    counter.bytes_sent = 10
    assert counter.snapshot().total == 10
    counter.reset()
    assert counter.snapshot().total == 0
    assert "sent=0" in repr(counter)
