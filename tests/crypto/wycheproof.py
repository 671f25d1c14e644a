"""Run Project Wycheproof vectors through keyward's own crypto API and classify each outcome.

Every vector in the files keyward cares about goes through *some* keyward call: the ones that
match keyward's algorithms are checked against their verdict, the rest are checked to be
refused by keyward's API (with the reason recorded), so nothing is silently skipped.

Outcomes (the second half of each tally key):

* ``pass``: a ``valid`` vector produced exactly the expected bytes (both directions where the
  API has both: wrap and unwrap, encrypt and decrypt).
* ``rejected``: an ``invalid`` vector was refused with the error class its flag calls for.
* ``accepted`` / ``refused``: what keyward did with an ``acceptable`` vector.
* ``cannot-express``: an RSA-OAEP vector with a non-empty label. Key Vault sends no OAEP label,
  so keyward's wrappers have no label parameter; the test asserts the ciphertext is refused
  (IntegrityError) instead of decrypting to the message. Not counted as a pass.
* ``refused-other-algorithm``: the mixed-hash OAEP file (SHA-256 with MGF1-SHA1), which is
  neither ``RSA-OAEP`` nor ``RSA-OAEP-256``: both keyward algorithms must refuse it.
* ``not-applicable``: outside keyward's parameters (AES-KW with a 128/192-bit KEK, AES-GCM
  with another key or nonce size, AES-KWP); keyward's API is asserted to refuse it as misuse
  (InvalidInputError) or to fail integrity when the bytes reach an algorithm they do not
  belong to.

Which error class an ``invalid`` vector must raise, per flag:

=====================================  ===================================================
RSA-OAEP ``InvalidOaepPadding``        IntegrityError (one message for every padding
                                       failure: Manger's attack needs them distinguishable)
RSA-OAEP ``InvalidCiphertext``         IntegrityError: wrong length or not reduced mod n
                                       means "not made by this key", not caller misuse
AES-KW ``ModifiedIv``,                 IntegrityError on unwrap (RFC 3394 check fails or
``InvalidWrappingSize``                the length is no KW output length)
AES-KW ``WrongDataSize``,              IntegrityError on unwrap of the (empty or short)
``EmptyKey``, ``ShortKey``             ciphertext, and InvalidInputError when keyward is
                                       asked to *wrap* such key material: that is the
                                       caller passing a key size KW cannot take (misuse)
AES-GCM (``ModifiedTag`` etc.)         IntegrityError
=====================================  ===================================================
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from shared.crypto import (
    DataKey,
    LocalAesKeyWrapper,
    LocalRsaWrapper,
    WrapAlgorithm,
    aes256gcm_decrypt,
    aes256gcm_encrypt,
)
from shared.errors import IntegrityError, InvalidInputError, UnsupportedAlgorithmError
from tests.conftest import REFERENCE

VECTORS = REFERENCE / "vectors" / "wycheproof" / "testvectors_v1"

OAEP_SHA1 = "rsa_oaep_2048_sha1_mgf1sha1_test.json"
OAEP_SHA256 = "rsa_oaep_2048_sha256_mgf1sha256_test.json"
OAEP_MIXED = "rsa_oaep_2048_sha256_mgf1sha1_test.json"
AES_KW = "aes_wrap_test.json"
AES_KWP = "aes_kwp_test.json"
AES_GCM = "aes_gcm_test.json"
FILES = (OAEP_SHA1, OAEP_SHA256, OAEP_MIXED, AES_KW, AES_KWP, AES_GCM)

#: Why vectors outside keyward's parameters are refused rather than run to their verdict.
NOT_APPLICABLE_REASONS = {
    AES_KW: "keyward's A256KW (LocalAesKeyWrapper) is strictly 256-bit: the 128/192-bit KEK "
    "groups are refused by its constructor (asserted)",
    AES_KWP: "keyward has no RFC 5649 key-wrap-with-padding algorithm (Key Vault's "
    "CKM_AES_KEY_WRAP_PAD is not a keyward WrapAlgorithm); each vector is asserted to fail as "
    "A256KW (256-bit groups) or to be refused by the 256-bit-only constructor",
    AES_GCM: "keyward's envelope is AES-256-GCM with a 96-bit nonce and 128-bit tag only; other "
    "key or nonce sizes are refused by aes256gcm_encrypt/decrypt as misuse (asserted)",
}


@dataclass(frozen=True)
class Vector:
    file: str
    group: dict[str, Any]
    test: dict[str, Any]

    @property
    def id(self) -> str:
        return f"{self.file.removesuffix('_test.json')}:{self.test['tcId']}"

    @property
    def verdict(self) -> str:
        return str(self.test["result"])

    @property
    def flags(self) -> list[str]:
        return list(self.test.get("flags", []))

    def hex(self, name: str) -> bytes:
        return bytes.fromhex(self.test[name])


_LOADED: dict[str, dict[str, Any]] = {}
_RSA_KEYS: dict[str, rsa.RSAPrivateKey] = {}


def load(file: str) -> dict[str, Any]:
    if file not in _LOADED:
        path = VECTORS / file
        if not path.is_file():
            raise FileNotFoundError(f"Wycheproof file {path} is missing from the reference folder")
        _LOADED[file] = json.loads(Path(path).read_text())
    return _LOADED[file]


def vectors(file: str) -> list[Vector]:
    data = load(file)
    return [Vector(file, group, test) for group in data["testGroups"] for test in group["tests"]]


def all_vectors() -> list[Vector]:
    return [v for file in FILES for v in vectors(file)]


def _b64url_int(text: str) -> int:
    import base64

    return int.from_bytes(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)), "big")


def rsa_private_key(vector: Vector) -> rsa.RSAPrivateKey:
    """The group's private key from its PKCS#8 DER hex, cross-checked with its JWK if given."""
    der_hex = vector.group["privateKeyPkcs8"]
    if der_hex not in _RSA_KEYS:
        key = serialization.load_der_private_key(bytes.fromhex(der_hex), password=None)
        assert isinstance(key, rsa.RSAPrivateKey)
        jwk = vector.group.get("privateKeyJwk")
        if jwk is not None:
            numbers = key.private_numbers()
            assert _b64url_int(jwk["n"]) == numbers.public_numbers.n
            assert _b64url_int(jwk["e"]) == numbers.public_numbers.e
            assert _b64url_int(jwk["d"]) == numbers.d
        _RSA_KEYS[der_hex] = key
    return _RSA_KEYS[der_hex]


def _oaep_algorithm(group: dict[str, Any]) -> WrapAlgorithm | None:
    if group["mgf"] != "MGF1":
        return None
    pair = (group["sha"], group["mgfSha"])
    if pair == ("SHA-1", "SHA-1"):
        return WrapAlgorithm.RSA_OAEP
    if pair == ("SHA-256", "SHA-256"):
        return WrapAlgorithm.RSA_OAEP_256
    return None


def _expect_integrity_error(call: Any, *args: Any) -> str:
    try:
        call(*args)
    except IntegrityError as exc:
        return str(exc)
    raise AssertionError("expected IntegrityError, the call succeeded")


def _expect_misuse(call: Any, *args: Any) -> None:
    try:
        call(*args)
    except InvalidInputError:
        return
    raise AssertionError("expected InvalidInputError, the call succeeded")


def run_rsa_oaep(vector: Vector) -> str:
    key = rsa_private_key(vector)
    msg, ct, label = vector.hex("msg"), vector.hex("ct"), vector.hex("label")
    algorithm = _oaep_algorithm(vector.group)
    kid = f"https://wycheproof.vault.azure.net/keys/{vector.file[:20].replace('_', '-')}"
    if algorithm is None:
        # Mixed hashes: neither of keyward's OAEP algorithms may produce the message.
        for candidate in (WrapAlgorithm.RSA_OAEP_256, WrapAlgorithm.RSA_OAEP):
            wrapper = LocalRsaWrapper(kid, private_key=key, algorithm=candidate)
            _expect_integrity_error(wrapper.unwrap, ct)
        return "refused-other-algorithm"
    wrapper = LocalRsaWrapper(kid, private_key=key, algorithm=algorithm)
    if label:
        # Key Vault cannot send an OAEP label; without it the ciphertext must not decrypt.
        _expect_integrity_error(wrapper.unwrap, ct)
        return "cannot-express"
    if vector.verdict == "valid":
        with wrapper.unwrap(ct) as dek:
            assert dek.reveal() == msg, "valid vector decrypted to other bytes"
            # And our wrap of the same message decrypts back (OAEP is randomized: no KAT).
            assert wrapper.unwrap(wrapper.wrap(dek)).reveal() == msg
        return "pass"
    assert vector.verdict == "invalid", vector.verdict
    # InvalidOaepPadding and InvalidCiphertext alike: the ciphertext was not made by this key
    # under this algorithm, which is an integrity failure, never a misuse error whose class
    # an attacker could tell apart (Manger's attack).
    _expect_integrity_error(wrapper.unwrap, ct)
    return "rejected"


_KW_MISUSE_FLAGS = {"WrongDataSize", "EmptyKey", "ShortKey"}


def run_aes_kw(vector: Vector) -> str:
    key, msg, ct = vector.hex("key"), vector.hex("msg"), vector.hex("ct")
    kid = "https://wycheproof.managedhsm.azure.net/keys/aes-kw"
    if len(key) != 32:
        _expect_misuse(LocalAesKeyWrapper, kid, DataKey(key))
        return "not-applicable"
    wrapper = LocalAesKeyWrapper(kid, DataKey(key))
    if vector.verdict == "valid":
        assert wrapper.wrap(DataKey(msg)) == ct, "wrap does not match the known answer"
        assert wrapper.unwrap(ct).reveal() == msg, "unwrap does not match the known answer"
        return "pass"
    if vector.verdict == "acceptable":
        # 8-byte keys (RFC 3394 single-block wrap): keyward never wraps less than 16 bytes.
        try:
            got = wrapper.unwrap(ct)
        except IntegrityError:
            _expect_misuse(wrapper.wrap, DataKey(msg))
            return "refused"
        assert got.reveal() == msg
        return "accepted"
    assert vector.verdict == "invalid", vector.verdict
    # Unwrapping bad ciphertext (wrong size, modified IV, empty) is an integrity failure.
    _expect_integrity_error(wrapper.unwrap, ct)
    if _KW_MISUSE_FLAGS & set(vector.flags):
        # Wrapping key material of a size KW cannot wrap is the caller's misuse.
        _expect_misuse(wrapper.wrap, DataKey(msg))
    return "rejected"


def run_aes_kwp(vector: Vector) -> str:
    key, ct = vector.hex("key"), vector.hex("ct")
    kid = "https://wycheproof.managedhsm.azure.net/keys/aes-kwp"
    for name in ("A256KWP", "CKM_AES_KEY_WRAP_PAD"):
        try:
            WrapAlgorithm.parse(name)
        except UnsupportedAlgorithmError:
            continue
        raise AssertionError(f"keyward grew a KWP algorithm {name}: run the KWP vectors for real")
    if len(key) != 32:
        _expect_misuse(LocalAesKeyWrapper, kid, DataKey(key))
        return "not-applicable"
    # A KWP ciphertext handed to keyward's A256KW must not unwrap (KWP's IV differs from
    # KW's), except tcId 238-style vectors whose "ciphertext" is a plain RFC 3394 KW wrap: KWP
    # must refuse those (invalid), and KW correctly unwraps them to the message.
    try:
        got = LocalAesKeyWrapper(kid, DataKey(key)).unwrap(ct)
    except IntegrityError:
        return "not-applicable"
    assert vector.verdict == "invalid", vector.id
    assert "ModifiedPadding" in vector.flags, vector.id
    assert got.reveal() == vector.hex("msg"), vector.id
    return "not-applicable"


def run_aes_gcm(vector: Vector) -> str:
    group = vector.group
    key, iv, aad = vector.hex("key"), vector.hex("iv"), vector.hex("aad")
    msg, ct, tag = vector.hex("msg"), vector.hex("ct"), vector.hex("tag")
    if not (group["keySize"] == 256 and group["ivSize"] == 96 and group["tagSize"] == 128):
        _expect_misuse(aes256gcm_decrypt, key, iv, ct + tag, aad)
        _expect_misuse(aes256gcm_encrypt, key, iv, msg, aad)
        return "not-applicable"
    if vector.verdict == "valid":
        assert aes256gcm_encrypt(key, iv, msg, aad) == ct + tag
        assert aes256gcm_decrypt(key, iv, ct + tag, aad) == msg
        return "pass"
    assert vector.verdict == "invalid", vector.verdict
    _expect_integrity_error(aes256gcm_decrypt, key, iv, ct + tag, aad)
    return "rejected"


_RUNNERS = {
    OAEP_SHA1: run_rsa_oaep,
    OAEP_SHA256: run_rsa_oaep,
    OAEP_MIXED: run_rsa_oaep,
    AES_KW: run_aes_kw,
    AES_KWP: run_aes_kwp,
    AES_GCM: run_aes_gcm,
}


def run(vector: Vector) -> str:
    """Run one vector through keyward's API; returns its outcome (see the module docstring)."""
    return _RUNNERS[vector.file](vector)


def tally() -> Counter[tuple[str, str, str]]:
    """(file, verdict, outcome) counts over every vector of every file."""
    counts: Counter[tuple[str, str, str]] = Counter()
    for vector in all_vectors():
        counts[(vector.file, vector.verdict, run(vector))] += 1
    return counts
