"""LocalRsaWrapper and LocalAesKeyWrapper: round trips, refusals, protocol conformance."""

from __future__ import annotations

import asyncio
import functools

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.crypto import (
    DEFAULT_WRAP_ALGORITHM,
    AsyncKeyWrapper,
    DataKey,
    KeyWrapper,
    LocalAesKeyWrapper,
    LocalRsaWrapper,
    SyncToAsyncWrapper,
    WrapAlgorithm,
    require_unwrap_allowed,
    require_wrap_allowed,
    rsa_public_key_from_jwk,
)
from shared.crypto._wrapped_key import b64url_encode
from shared.errors import IntegrityError, InvalidInputError, UnsupportedAlgorithmError

KID = "https://contoso-kv.vault.azure.net/keys/kek/0123456789abcdef0123456789abcdef"
OAEP = (WrapAlgorithm.RSA_OAEP_256, WrapAlgorithm.RSA_OAEP)


@functools.cache
def rsa_key(bits: int = 2048, which: int = 0) -> rsa.RSAPrivateKey:
    del which
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


deks = st.binary(min_size=16, max_size=64).map(DataKey)


@settings(max_examples=25, deadline=None)
@given(deks, st.sampled_from(OAEP))
def test_rsa_round_trip(dek: DataKey, algorithm: WrapAlgorithm) -> None:
    private = rsa_key()
    wrap_only = LocalRsaWrapper(KID, public_key=private.public_key(), algorithm=algorithm)
    both = LocalRsaWrapper(KID, private_key=private, algorithm=algorithm)
    wrapped = wrap_only.wrap(dek)
    assert len(wrapped) == 256
    assert both.unwrap(wrapped).matches(dek)
    assert both.unwrap(both.wrap(dek)).matches(dek)


@settings(max_examples=10, deadline=None)
@given(deks)
def test_rsa_algorithms_do_not_cross(dek: DataKey) -> None:
    private = rsa_key()
    sha256 = LocalRsaWrapper(KID, private_key=private, algorithm=WrapAlgorithm.RSA_OAEP_256)
    sha1 = LocalRsaWrapper(KID, private_key=private, algorithm=WrapAlgorithm.RSA_OAEP)
    with pytest.raises(IntegrityError):
        sha1.unwrap(sha256.wrap(dek))
    with pytest.raises(IntegrityError):
        sha256.unwrap(sha1.wrap(dek))


def test_rsa_wrap_interoperates_with_plain_cryptography() -> None:
    """What Key Vault computes: OAEP with the documented hashes and no label."""
    private = rsa_key()
    dek = DataKey.generate()
    sha1 = hashes.SHA1()
    expected = {
        WrapAlgorithm.RSA_OAEP_256: padding.OAEP(
            padding.MGF1(hashes.SHA256()), hashes.SHA256(), None
        ),
        WrapAlgorithm.RSA_OAEP: padding.OAEP(padding.MGF1(sha1), sha1, None),
    }
    for algorithm, pad in expected.items():
        wrapper = LocalRsaWrapper(KID, private_key=private, algorithm=algorithm)
        assert private.decrypt(wrapper.wrap(dek), pad) == dek.reveal()
        assert wrapper.unwrap(private.public_key().encrypt(dek.reveal(), pad)).matches(dek)


def test_rsa_wrong_key_is_integrity_error() -> None:
    dek = DataKey.generate()
    wrapped = LocalRsaWrapper(KID, private_key=rsa_key()).wrap(dek)
    with pytest.raises(IntegrityError):
        LocalRsaWrapper(KID, private_key=rsa_key(2048, which=1)).unwrap(wrapped)


def test_rsa_wrong_length_is_integrity_error() -> None:
    wrapper = LocalRsaWrapper(KID, private_key=rsa_key())
    wrapped = wrapper.wrap(DataKey.generate())
    for bad in (b"", wrapped[:-1], wrapped + b"\0", bytes(512)):
        with pytest.raises(IntegrityError):
            wrapper.unwrap(bad)


def test_rsa1_5_wrap_is_always_refused() -> None:
    private = rsa_key()
    wrapper = LocalRsaWrapper(
        KID, private_key=private, algorithm=WrapAlgorithm.RSA1_5, allow_legacy_rsa1_5=True
    )
    with pytest.raises(UnsupportedAlgorithmError):
        wrapper.wrap(DataKey.generate())
    with pytest.raises(UnsupportedAlgorithmError):
        require_wrap_allowed(WrapAlgorithm.RSA1_5)


def test_rsa1_5_unwrap_only_when_allowed() -> None:
    private = rsa_key()
    dek = DataKey.generate()
    legacy = private.public_key().encrypt(dek.reveal(), padding.PKCS1v15())
    with pytest.raises(UnsupportedAlgorithmError):
        LocalRsaWrapper(KID, private_key=private, algorithm=WrapAlgorithm.RSA1_5)
    with pytest.raises(UnsupportedAlgorithmError):
        require_unwrap_allowed(WrapAlgorithm.RSA1_5, allow_legacy_rsa1_5=False)
    require_unwrap_allowed(WrapAlgorithm.RSA1_5, allow_legacy_rsa1_5=True)
    reader = LocalRsaWrapper(
        KID, private_key=private, algorithm=WrapAlgorithm.RSA1_5, allow_legacy_rsa1_5=True
    )
    assert reader.unwrap(legacy).matches(dek)


def test_rsa_constructor_refusals() -> None:
    with pytest.raises(InvalidInputError):
        LocalRsaWrapper(KID)
    with pytest.raises(UnsupportedAlgorithmError):
        LocalRsaWrapper(KID, private_key=rsa_key(), algorithm=WrapAlgorithm.A256KW)
    with pytest.raises(InvalidInputError):
        LocalRsaWrapper(KID, private_key=rsa_key(1024))
    with pytest.raises(InvalidInputError):
        LocalRsaWrapper(KID, public_key=rsa_key(3072).public_key(), private_key=rsa_key())


def test_public_only_wrapper_refuses_unwrap_as_misuse() -> None:
    wrapper = LocalRsaWrapper(KID, public_key=rsa_key().public_key())
    assert not wrapper.can_unwrap
    with pytest.raises(InvalidInputError):
        wrapper.unwrap(bytes(256))


def test_rsa_message_size_limit() -> None:
    wrapper = LocalRsaWrapper(KID, public_key=rsa_key().public_key())
    assert len(wrapper.wrap(DataKey(bytes(190)))) == 256
    with pytest.raises(InvalidInputError):
        wrapper.wrap(DataKey(bytes(191)))
    sha1 = LocalRsaWrapper(KID, public_key=rsa_key().public_key(), algorithm=WrapAlgorithm.RSA_OAEP)
    sha1.wrap(DataKey(bytes(214)))
    with pytest.raises(InvalidInputError):
        sha1.wrap(DataKey(bytes(215)))


def test_public_key_from_jwk_matches() -> None:
    public = rsa_key().public_key()
    numbers = public.public_numbers()
    n = numbers.n.to_bytes(256, "big")
    e = numbers.e.to_bytes(3, "big")
    assert rsa_public_key_from_jwk(n, e).public_numbers() == numbers
    assert rsa_public_key_from_jwk(b64url_encode(n), b64url_encode(e)).public_numbers() == numbers


def test_reprs_show_no_key_material() -> None:
    private = rsa_key()
    text = repr(LocalRsaWrapper(KID, private_key=private))
    assert str(private.private_numbers().d)[:20] not in text
    assert "public+private" in text
    kek = DataKey(bytes(range(32)))
    assert bytes(range(32)).hex() not in repr(LocalAesKeyWrapper(KID, kek))


@given(st.binary(min_size=32, max_size=32), st.integers(2, 8).map(lambda n: n * 8))
def test_aes_kw_round_trip(kek: bytes, size: int) -> None:
    wrapper = LocalAesKeyWrapper(KID, DataKey(kek))
    dek = DataKey.generate(size)
    wrapped = wrapper.wrap(dek)
    assert len(wrapped) == size + 8
    assert wrapper.unwrap(wrapped).matches(dek)


@given(st.binary(min_size=32, max_size=32), st.binary(min_size=32, max_size=32))
def test_aes_kw_wrong_kek_is_integrity_error(kek: bytes, other: bytes) -> None:
    if kek == other:
        return
    wrapped = LocalAesKeyWrapper(KID, DataKey(kek)).wrap(DataKey.generate())
    with pytest.raises(IntegrityError):
        LocalAesKeyWrapper(KID, DataKey(other)).unwrap(wrapped)


def test_aes_kw_is_strictly_256_bit() -> None:
    for size in (16, 24, 31, 33, 64):
        with pytest.raises(InvalidInputError):
            LocalAesKeyWrapper(KID, DataKey(bytes(size)))
    assert LocalAesKeyWrapper(KID, DataKey(bytes(32))).algorithm is WrapAlgorithm.A256KW


def test_aes_kw_misuse_and_integrity() -> None:
    wrapper = LocalAesKeyWrapper(KID, DataKey(bytes(32)))
    for size in (0, 8, 17, 20):
        with pytest.raises(InvalidInputError):
            wrapper.wrap(DataKey(bytes(size)))
    for size in (0, 8, 16, 25):
        with pytest.raises(IntegrityError):
            wrapper.unwrap(bytes(size))


def test_wrappers_satisfy_both_protocols() -> None:
    rsa_wrapper = LocalRsaWrapper(KID, private_key=rsa_key())
    aes_wrapper = LocalAesKeyWrapper(KID, DataKey(bytes(32)))
    assert rsa_wrapper.algorithm is DEFAULT_WRAP_ALGORITHM is WrapAlgorithm.RSA_OAEP_256
    for wrapper in (rsa_wrapper, aes_wrapper):
        assert isinstance(wrapper, KeyWrapper)
        assert wrapper.key_id == KID
        adapted = SyncToAsyncWrapper(wrapper)
        assert isinstance(adapted, AsyncKeyWrapper)
        assert adapted.key_id == KID
        assert adapted.algorithm is wrapper.algorithm
        dek = DataKey.generate()

        async def round_trip(w: SyncToAsyncWrapper = adapted, d: DataKey = dek) -> DataKey:
            return await w.unwrap(await w.wrap(d))

        assert asyncio.run(round_trip()).matches(dek)


def test_algorithm_names_are_key_vaults() -> None:
    assert [a.value for a in WrapAlgorithm] == ["RSA-OAEP-256", "RSA-OAEP", "A256KW", "RSA1_5"]
    assert WrapAlgorithm.parse("RSA-OAEP") is WrapAlgorithm.RSA_OAEP
    assert not WrapAlgorithm.A256KW.is_rsa
    for bad in ("rsa-oaep", "RSA-OAEP-384", "A128KW", "", "RSA1_5 "):
        with pytest.raises(UnsupportedAlgorithmError):
            WrapAlgorithm.parse(bad)
