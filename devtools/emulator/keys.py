"""Key material: generation, import, JSON Web Key views, and the vault-side crypto
(encrypt, decrypt, wrap, unwrap, sign, verify).

Private keys are kept as PKCS#8 PEM (RSA) or hex (oct) in the state, so ``--state`` can save
them, and loaded into ``cryptography`` objects once per version (:class:`MaterialCache`): the
benchmark drives hundreds of unwraps a second and re-parsing PEM per request would cost more
than the RSA operation itself. Nothing in this module logs; key material never reaches a log.
"""

from __future__ import annotations

import base64
import binascii
import os
import secrets
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
from cryptography.hazmat.primitives.keywrap import InvalidUnwrap, aes_key_unwrap, aes_key_wrap

from devtools.emulator.state import KeyVersion

RSA_KEY_TYPES = ("RSA", "RSA-HSM")
OCT_KEY_TYPES = ("oct-HSM",)
RSA_SIZES = (2048, 3072, 4096)
OCT_SIZES = (128, 192, 256)
RSA_DEFAULT_OPS = ["encrypt", "decrypt", "sign", "verify", "wrapKey", "unwrapKey"]
OCT_DEFAULT_OPS = ["encrypt", "decrypt", "wrapKey", "unwrapKey"]
RSA_ALGORITHMS = ("RSA-OAEP", "RSA-OAEP-256", "RSA1_5")
AES_KW_ALGORITHMS = {"A128KW": 16, "A192KW": 24, "A256KW": 32}


class CryptoInputError(ValueError):
    """A request the vault refuses as a bad parameter (wrong algorithm, bad ciphertext)."""


def new_version() -> str:
    """32 lowercase hex characters, like the service's version ids."""
    return secrets.token_hex(16)


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64_any(text: str) -> bytes:
    """Decode base64url or standard base64, padded or not (the service's examples mix them)."""
    cleaned = text.strip().replace("-", "+").replace("_", "/")
    try:
        return base64.b64decode(cleaned + "=" * (-len(cleaned) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise CryptoInputError("value is not valid base64url") from None


def _int_b64(value: int) -> str:
    return b64url(value.to_bytes((value.bit_length() + 7) // 8 or 1, "big"))


def _b64_int(text: str) -> int:
    return int.from_bytes(b64_any(text), "big")


def generate_rsa_pem(key_size: int, public_exponent: int = 65537) -> str:
    """A fresh RSA private key as PKCS#8 PEM (slow for 4096: call it off the event loop)."""
    key = rsa.generate_private_key(public_exponent=public_exponent, key_size=key_size)
    return _pem(key)


def _pem(key: rsa.RSAPrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode("ascii")


def generate_oct_hex(key_size: int) -> str:
    return os.urandom(key_size // 8).hex()


def rsa_pem_from_jwk(jwk: dict[str, Any]) -> tuple[str, int]:
    """(PKCS#8 PEM, modulus bits) from an imported RSA JWK with private parts.

    Raises:
        CryptoInputError: a public-only or malformed JWK.
    """
    try:
        n, e, d = _b64_int(jwk["n"]), _b64_int(jwk["e"]), _b64_int(jwk["d"])
        p, q = _b64_int(jwk["p"]), _b64_int(jwk["q"])
    except KeyError as missing:
        raise CryptoInputError(f"RSA key import needs the private part {missing}") from None
    dp = _b64_int(jwk["dp"]) if "dp" in jwk else rsa.rsa_crt_dmp1(d, p)
    dq = _b64_int(jwk["dq"]) if "dq" in jwk else rsa.rsa_crt_dmq1(d, q)
    qi = _b64_int(jwk["qi"]) if "qi" in jwk else rsa.rsa_crt_iqmp(p, q)
    try:
        key = rsa.RSAPrivateNumbers(p, q, d, dp, dq, qi, rsa.RSAPublicNumbers(e, n)).private_key()
    except ValueError:
        raise CryptoInputError("the RSA key parameters are inconsistent") from None
    return _pem(key), key.key_size


class MaterialCache:
    """Loaded key objects per version (versions are 128-bit random, so unique)."""

    def __init__(self, limit: int = 50_000) -> None:
        self._keys: dict[str, rsa.RSAPrivateKey | bytes] = {}
        self._limit = limit

    def get(self, version: KeyVersion) -> rsa.RSAPrivateKey | bytes:
        loaded = self._keys.get(version.version)
        if loaded is None:
            if len(self._keys) >= self._limit:
                self._keys.clear()
            if version.kty in OCT_KEY_TYPES:
                loaded = bytes.fromhex(version.private)
            else:
                private = serialization.load_pem_private_key(
                    version.private.encode("ascii"), password=None
                )
                if not isinstance(private, rsa.RSAPrivateKey):
                    raise TypeError("stored key is not RSA")
                loaded = private
            self._keys[version.version] = loaded
        return loaded

    def forget(self, version: str) -> None:
        self._keys.pop(version, None)


def public_jwk(version: KeyVersion, kid: str, cache: MaterialCache) -> dict[str, Any]:
    """The ``key`` object of a KeyBundle: public parts only, never ``d`` or ``k``."""
    jwk: dict[str, Any] = {"kid": kid, "kty": version.kty, "key_ops": list(version.key_ops)}
    if version.kty in RSA_KEY_TYPES:
        private = cache.get(version)
        assert isinstance(private, rsa.RSAPrivateKey)
        numbers = private.public_key().public_numbers()
        jwk["n"] = _int_b64(numbers.n)
        jwk["e"] = _int_b64(numbers.e)
    return jwk


def _oaep(algorithm: str) -> padding.AsymmetricPadding:
    if algorithm == "RSA-OAEP-256":
        return padding.OAEP(
            mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None
        )
    if algorithm == "RSA-OAEP":
        sha1 = hashes.SHA1()  # noqa: S303 - Key Vault's RSA-OAEP is defined with SHA-1
        return padding.OAEP(mgf=padding.MGF1(sha1), algorithm=sha1, label=None)
    if algorithm == "RSA1_5":
        return padding.PKCS1v15()
    raise CryptoInputError(f"Invalid algorithm '{algorithm}' for an RSA key.")


def apply(
    version: KeyVersion, cache: MaterialCache, operation: str, alg: str, value: bytes
) -> bytes:
    """Run ``operation`` (encrypt, decrypt, wrapKey, unwrapKey) with ``alg`` on ``value``.

    Raises:
        CryptoInputError: an algorithm the key type cannot use, or input that fails to decrypt.
    """
    material = cache.get(version)
    forward = operation in ("encrypt", "wrapKey")
    if isinstance(material, rsa.RSAPrivateKey):
        pad = _oaep(alg)
        if forward:
            try:
                return material.public_key().encrypt(value, pad)
            except ValueError:
                raise CryptoInputError(
                    "The value is too long for this key and algorithm."
                ) from None
        try:
            return material.decrypt(value, pad)
        except ValueError:
            raise CryptoInputError("The ciphertext could not be decrypted.") from None
    size = AES_KW_ALGORITHMS.get(alg)
    if size is None or operation in ("encrypt", "decrypt"):
        raise CryptoInputError(
            f"Invalid algorithm '{alg}' for {operation} with an {version.kty} key."
        )
    if size != len(material):
        raise CryptoInputError(f"Algorithm '{alg}' needs a {size * 8}-bit key.")
    try:
        if forward:
            return aes_key_wrap(material, value)
        return aes_key_unwrap(material, value)
    except (InvalidUnwrap, ValueError):
        raise CryptoInputError("The wrapped key failed its integrity check.") from None


_SIGN_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "256": hashes.SHA256,
    "384": hashes.SHA384,
    "512": hashes.SHA512,
}


def _signature_scheme(alg: str) -> tuple[padding.AsymmetricPadding, hashes.HashAlgorithm]:
    """RS256/384/512 (PKCS#1 v1.5) and PS256/384/512 (PSS, salt = digest length)."""
    family, bits = alg[:2], alg[2:]
    hash_type = _SIGN_HASHES.get(bits)
    if family not in ("RS", "PS") or hash_type is None:
        raise CryptoInputError(f"Invalid algorithm '{alg}' for an RSA key.")
    digest_hash = hash_type()
    if family == "RS":
        return padding.PKCS1v15(), digest_hash
    return padding.PSS(mgf=padding.MGF1(hash_type()), salt_length=digest_hash.digest_size), (
        digest_hash
    )


def _rsa(version: KeyVersion, cache: MaterialCache) -> rsa.RSAPrivateKey:
    material = cache.get(version)
    if not isinstance(material, rsa.RSAPrivateKey):
        raise CryptoInputError(f"Signing is not available for {version.kty} keys.")
    return material


def sign(version: KeyVersion, cache: MaterialCache, alg: str, digest: bytes) -> bytes:
    """Sign a precomputed digest, as the service does (the client hashes).

    Raises:
        CryptoInputError: an unknown algorithm, a non-RSA key, or a digest of the wrong size.
    """
    pad, digest_hash = _signature_scheme(alg)
    if len(digest) != digest_hash.digest_size:
        raise CryptoInputError(f"The digest for {alg} is {digest_hash.digest_size} bytes.")
    return _rsa(version, cache).sign(digest, pad, Prehashed(digest_hash))


def verify(
    version: KeyVersion, cache: MaterialCache, alg: str, digest: bytes, signature: bytes
) -> bool:
    """Whether ``signature`` is valid for ``digest`` under the key's public half."""
    pad, digest_hash = _signature_scheme(alg)
    try:
        _rsa(version, cache).public_key().verify(signature, digest, pad, Prehashed(digest_hash))
    except InvalidSignature:
        return False
    except ValueError:
        raise CryptoInputError(
            f"The digest for {alg} is {digest_hash.digest_size} bytes."
        ) from None
    return True
