"""DataKey: secret bytes never leak through repr/str/format/pickle; wipe zeroes; KCV."""

from __future__ import annotations

import copy
import pickle

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.crypto import DEK_SIZE, KCV_SIZE, DataKey, key_check_value
from shared.errors import InvalidInputError

material = st.binary(min_size=16, max_size=64)


def _renderings(key: DataKey) -> list[str]:
    return [repr(key), str(key), f"{key}", f"{key!r}", format(key), "{}".format(key)]  # noqa: UP032


def _leaks(secret: bytes, text: str) -> bool:
    # Any recognisable rendering of the bytes: hex, Python bytes literal, base64.
    import base64

    forms = {
        secret.hex(),
        secret.hex().upper(),
        repr(secret),
        base64.b64encode(secret).decode(),
        base64.urlsafe_b64encode(secret).decode().rstrip("="),
    }
    return any(form and form in text for form in forms)


@given(material)
def test_repr_str_format_never_show_key_bytes(secret: bytes) -> None:
    key = DataKey(secret)
    for text in _renderings(key):
        assert not _leaks(secret, text), text
        assert key.kcv in text
    # Inside containers too (repr of a list uses the element's repr).
    assert not _leaks(secret, repr([key, {"k": key}]))


@given(material)
def test_cannot_be_pickled_or_copied(secret: bytes) -> None:
    key = DataKey(secret)
    for protocol in range(pickle.HIGHEST_PROTOCOL + 1):
        with pytest.raises(TypeError):
            pickle.dumps(key, protocol=protocol)
    with pytest.raises(TypeError):
        copy.copy(key)
    with pytest.raises(TypeError):
        copy.deepcopy(key)


def test_format_spec_does_not_reach_the_bytes() -> None:
    key = DataKey(bytes(range(32)))
    with pytest.raises(TypeError):
        format(key, "x")
    assert not hasattr(key, "__dict__")


@given(material)
def test_wipe_zeroes_the_buffer(secret: bytes) -> None:
    key = DataKey(secret)
    buffer = key._buffer  # the canonical copy
    key.wipe()
    assert bytes(buffer) == bytes(len(secret))
    assert key.wiped
    assert repr(key) == "DataKey(<wiped>)"
    with pytest.raises(InvalidInputError):
        key.reveal()
    with pytest.raises(InvalidInputError):
        _ = key.kcv


def test_context_manager_wipes_even_on_error() -> None:
    key = DataKey.generate()
    with pytest.raises(RuntimeError), key:
        raise RuntimeError("boom")
    assert key.wiped


def test_from_bytes_copies_the_callers_buffer() -> None:
    source = bytearray(range(32))
    key = DataKey.from_bytes(source)
    source[:] = bytes(32)
    assert key.reveal() == bytes(range(32))


@given(material)
def test_kcv_is_stable_and_short(secret: bytes) -> None:
    a, b = DataKey(secret), DataKey(bytes(secret))
    assert a.kcv == b.kcv == key_check_value(secret)
    assert len(a.kcv) == 2 * KCV_SIZE
    assert a.kcv == a.kcv.lower()
    assert secret.hex() not in a.kcv


@given(material, material)
def test_kcv_differs_for_different_keys(first: bytes, second: bytes) -> None:
    if first == second:
        return
    assert DataKey(first).kcv != DataKey(second).kcv


def test_kcv_known_answer() -> None:
    # Pinned: a change of label or construction would orphan every stored KCV.
    assert key_check_value(bytes(32)) == "1f95ea5bcf3ea162"
    assert key_check_value(b"2.0\0\0\0\0\0" + bytes(range(32))) == "de44ecf89e4a22f5"


def test_generate_is_random_and_sized() -> None:
    keys = [DataKey.generate() for _ in range(64)]
    assert all(len(k) == DEK_SIZE for k in keys)
    assert len({k.kcv for k in keys}) == 64
    assert len(DataKey.generate(48)) == 48
    for bad in (0, 15, 513):
        with pytest.raises(InvalidInputError):
            DataKey.generate(bad)


def test_oversized_material_refused() -> None:
    with pytest.raises(InvalidInputError):
        DataKey(bytes(513))


def test_equality_is_identity_and_matches_is_explicit() -> None:
    a, b = DataKey(bytes(range(32))), DataKey(bytes(range(32)))
    assert a != b
    assert a == a
    assert a.matches(b)
    assert not a.matches(DataKey(bytes(32)))
    assert len({a, b}) == 2


def test_wiped_key_matches_nothing() -> None:
    zero, wiped = DataKey(bytes(32)), DataKey.generate()
    wiped.wipe()
    with pytest.raises(InvalidInputError):
        zero.matches(wiped)
    with pytest.raises(InvalidInputError):
        wiped.matches(zero)
