"""WrappedKey: JSON round trip, byte-for-byte pinned serialization, malformed records."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.crypto import (
    WRAPPED_KEY_FORMAT_VERSION,
    WrapAlgorithm,
    WrappedKey,
    b64_decode_any,
    b64url_encode,
)
from shared.errors import InvalidInputError, UnsupportedAlgorithmError

KID = "https://contoso-kv.vault.azure.net/keys/dek-kek/0123456789abcdef0123456789abcdef"

key_ids = st.builds(
    lambda vault, name, version: f"https://{vault}.vault.azure.net/keys/{name}/{version}",
    st.from_regex(r"\A[a-z][a-z0-9]{2,22}\Z"),
    st.from_regex(r"\A[a-zA-Z0-9-]{1,40}\Z"),
    st.from_regex(r"\A[0-9a-f]{32}\Z"),
)
records = st.builds(
    WrappedKey,
    key_id=key_ids,
    algorithm=st.sampled_from(list(WrapAlgorithm)),
    wrapped=st.binary(min_size=1, max_size=1024),
    kcv=st.from_regex(r"\A[0-9a-f]{16}\Z"),
)


@given(records)
def test_json_round_trip(record: WrappedKey) -> None:
    text = record.to_json()
    assert WrappedKey.from_json(text) == record
    assert WrappedKey.from_json(text.encode()) == record
    assert WrappedKey.from_dict(record.to_dict()) == record
    assert WrappedKey.from_json(text).to_json() == text


@given(st.binary(max_size=600))
def test_base64_helpers_round_trip_in_both_alphabets(data: bytes) -> None:
    import base64

    assert b64_decode_any(b64url_encode(data)) == data
    assert b64_decode_any(base64.b64encode(data).decode()) == data
    assert "=" not in b64url_encode(data)


def test_serialization_is_pinned_byte_for_byte() -> None:
    record = WrappedKey(
        key_id=KID,
        algorithm=WrapAlgorithm.RSA_OAEP_256,
        wrapped=bytes(range(250, 256)) + b"\x00\x01\x02\xfb\xff",
        kcv="0011223344556677",
    )
    assert record.format_version == WRAPPED_KEY_FORMAT_VERSION == 1
    assert record.to_json() == (
        '{"alg":"RSA-OAEP-256","kcv":"0011223344556677",'
        '"kid":"https://contoso-kv.vault.azure.net/keys/dek-kek/0123456789abcdef0123456789abcdef",'
        '"v":1,"wk":"-vv8_f7_AAEC-_8"}'
    )


def test_standard_base64_wrapped_bytes_accepted() -> None:
    """Key Vault answers wrapKey in standard base64 despite declaring base64url."""
    text = json.dumps(
        {"alg": "RSA-OAEP", "kcv": "0011223344556677", "kid": KID, "v": 1, "wk": "+vv8/f7/AA=="}
    )
    assert WrappedKey.from_json(text).wrapped == bytes.fromhex("fafbfcfdfeff00")


def test_repr_shows_length_not_bytes() -> None:
    record = WrappedKey(KID, WrapAlgorithm.RSA_OAEP, b"\xab" * 256, "0011223344556677")
    assert "abab" not in repr(record)
    assert "<256 bytes>" in repr(record)


def _good() -> dict[str, Any]:
    return {"alg": "RSA-OAEP-256", "kcv": "0011223344556677", "kid": KID, "v": 1, "wk": "AAEC"}


def _with(**changes: Any) -> dict[str, Any]:
    record = _good()
    for name, value in changes.items():
        if value is _DROP:
            del record[name]
        else:
            record[name] = value
    return record


_DROP = object()

MALFORMED_DICTS = {
    "missing alg": _with(alg=_DROP),
    "missing kcv": _with(kcv=_DROP),
    "missing kid": _with(kid=_DROP),
    "missing v": _with(v=_DROP),
    "missing wk": _with(wk=_DROP),
    "unknown field": {**_good(), "extra": 1},
    "version 2": _with(v=2),
    "version 0": _with(v=0),
    "version as string": _with(v="1"),
    "version as bool": _with(v=True),
    "version as float": _with(v=1.0),
    "alg lowercase": _with(alg="rsa-oaep-256"),
    "alg unknown": _with(alg="A128KW"),
    "alg not string": _with(alg=1),
    "kcv uppercase": _with(kcv="0011223344AABBCC"),
    "kcv short": _with(kcv="00112233"),
    "kcv newline": _with(kcv="0011223344556677\n"),
    "kcv not string": _with(kcv=17),
    "kid http": _with(kid=KID.replace("https", "http")),
    "kid unversioned": _with(kid=KID.rsplit("/", 1)[0]),
    "kid bad version": _with(kid=KID[:-1] + "g"),
    "kid secrets path": _with(kid=KID.replace("/keys/", "/secrets/")),
    "kid with query": _with(kid=KID + "?x=1"),
    "kid with space": _with(kid=KID.replace("dek-kek", "dek kek")),
    "kid with newline": _with(kid=KID + "\n"),
    "kid with userinfo": _with(kid=KID.replace("https://", "https://a@")),
    "kid not string": _with(kid=None),
    "wk empty": _with(wk=""),
    "wk not base64": _with(wk="***"),
    "wk bad length": _with(wk="A"),
    "wk too large": _with(wk=b64url_encode(bytes(1025))),
    "wk not string": _with(wk=[1]),
}


@pytest.mark.parametrize("record", list(MALFORMED_DICTS.values()), ids=list(MALFORMED_DICTS))
def test_malformed_record_is_invalid_input(record: dict[str, Any]) -> None:
    with pytest.raises(InvalidInputError):
        WrappedKey.from_dict(record)
    with pytest.raises(InvalidInputError):
        WrappedKey.from_json(json.dumps(record))


MALFORMED_TEXT = {
    "empty": "",
    "not json": "wk=abc",
    "array": "[]",
    "null": "null",
    "number": "1",
    "truncated": json.dumps(_good())[:-1],
    "duplicate field": (
        '{"alg":"RSA-OAEP-256","alg":"A256KW","kcv":"0011223344556677",'
        f'"kid":"{KID}","v":1,"wk":"AAEC"}}'
    ),
    "deeply nested": "[" * 100_000 + "]" * 100_000,
    "huge": " " * 100_000 + json.dumps(_good()),
    "invalid utf-8": b"\xff\xfe{}",
    "NaN version": json.dumps(_good()).replace('"v": 1', '"v": NaN'),
}


@pytest.mark.parametrize("text", list(MALFORMED_TEXT.values()), ids=list(MALFORMED_TEXT))
def test_malformed_json_is_invalid_input(text: str | bytes) -> None:
    with pytest.raises(InvalidInputError):
        WrappedKey.from_json(text)


@given(st.text(max_size=200) | st.binary(max_size=200))
def test_arbitrary_input_never_escapes_as_another_error(text: str | bytes) -> None:
    try:
        WrappedKey.from_json(text)
    except InvalidInputError:
        pass


def test_unknown_algorithm_is_unsupported_algorithm_error() -> None:
    with pytest.raises(UnsupportedAlgorithmError):
        WrappedKey.from_dict(_with(alg="RSA-OAEP-512"))


def test_constructor_validates() -> None:
    with pytest.raises(InvalidInputError):
        WrappedKey(KID, WrapAlgorithm.RSA_OAEP, "text", "0011223344556677")  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError):
        WrappedKey(KID, "RSA-OAEP", b"x", "0011223344556677")  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError):
        WrappedKey(KID, WrapAlgorithm.RSA_OAEP, b"x", "0011223344556677", format_version=2)
