"""KeyWrappers that run in-process on ``cryptography``.

``LocalRsaWrapper`` with only a public key is the wrap half of the Key Vault wrapper (the SDK
does the same: RSA wrap needs nothing secret). With a private key it also unwraps, which is
what tests and the Wycheproof run use. ``LocalAesKeyWrapper`` is RFC 3394 AES key wrap, the
``A256KW`` Managed HSM offers for ``oct-HSM`` keys.
"""

from __future__ import annotations

import base64

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.keywrap import InvalidUnwrap, aes_key_unwrap, aes_key_wrap

from shared.crypto._algorithms import (
    DEFAULT_WRAP_ALGORITHM,
    WrapAlgorithm,
    require_unwrap_allowed,
    require_wrap_allowed,
)
from shared.crypto._data_key import DataKey
from shared.errors import IntegrityError, InvalidInputError, UnsupportedAlgorithmError

#: Smallest RSA modulus keyward accepts; Key Vault's smallest is 2048 too.
MIN_RSA_BITS = 2048
_OAEP_SHA1_OVERHEAD = 2 * 20 + 2
_OAEP_SHA256_OVERHEAD = 2 * 32 + 2
_PKCS1_V15_OVERHEAD = 11


def _rsa_padding(algorithm: WrapAlgorithm) -> padding.AsymmetricPadding:
    if algorithm is WrapAlgorithm.RSA_OAEP_256:
        return padding.OAEP(
            mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None
        )
    if algorithm is WrapAlgorithm.RSA_OAEP:
        # Key Vault defines RSA-OAEP as SHA-1 with MGF1-SHA1; OAEP's security does not rest
        # on SHA-1 collision resistance, and keyward must read what the vault wrote.
        sha1 = hashes.SHA1()  # noqa: S303
        return padding.OAEP(mgf=padding.MGF1(sha1), algorithm=sha1, label=None)
    if algorithm is WrapAlgorithm.RSA1_5:
        return padding.PKCS1v15()
    raise UnsupportedAlgorithmError(f"{algorithm.value} is not an RSA algorithm")


def _max_rsa_message(modulus_bytes: int, algorithm: WrapAlgorithm) -> int:
    overhead = {
        WrapAlgorithm.RSA_OAEP_256: _OAEP_SHA256_OVERHEAD,
        WrapAlgorithm.RSA_OAEP: _OAEP_SHA1_OVERHEAD,
        WrapAlgorithm.RSA1_5: _PKCS1_V15_OVERHEAD,
    }[algorithm]
    return modulus_bytes - overhead


def _b64url_int(value: str) -> int:
    padded = value + "=" * (-len(value) % 4)
    return int.from_bytes(base64.urlsafe_b64decode(padded), "big")


def _modulus_bytes(key: rsa.RSAPublicKey | rsa.RSAPrivateKey) -> int:
    return (key.key_size + 7) // 8


def rsa_public_key_from_jwk(n: bytes | str, e: bytes | str) -> rsa.RSAPublicKey:
    """An RSA public key from JWK ``n`` and ``e`` (raw big-endian bytes or base64url).

    Raises:
        ValueError: ``n`` / ``e`` do not make an RSA public key (cryptography's check).
    """
    modulus = _b64url_int(n) if isinstance(n, str) else int.from_bytes(n, "big")
    exponent = _b64url_int(e) if isinstance(e, str) else int.from_bytes(e, "big")
    return rsa.RSAPublicNumbers(exponent, modulus).public_key()


class LocalRsaWrapper:
    """RSA-OAEP-256 / RSA-OAEP wrap (public key) and unwrap (private key, when given)."""

    def __init__(
        self,
        key_id: str,
        *,
        public_key: rsa.RSAPublicKey | None = None,
        private_key: rsa.RSAPrivateKey | None = None,
        algorithm: WrapAlgorithm = DEFAULT_WRAP_ALGORITHM,
        allow_legacy_rsa1_5: bool = False,
    ) -> None:
        """Build a wrapper over a public key (wrap only) or a private key (both halves).

        Raises:
            UnsupportedAlgorithmError: a non-RSA algorithm, or RSA1_5 without
                ``allow_legacy_rsa1_5``.
            InvalidInputError: no key, a key under 2048 bits, or a mismatched pair.
        """
        if not algorithm.is_rsa:
            raise UnsupportedAlgorithmError(f"{algorithm.value} needs an AES key, not RSA")
        if public_key is None and private_key is None:
            raise InvalidInputError("LocalRsaWrapper needs a public or a private key")
        if public_key is None:
            assert private_key is not None
            public_key = private_key.public_key()
        elif private_key is not None and (
            private_key.public_key().public_numbers() != public_key.public_numbers()
        ):
            # A pair that does not belong together would wrap what it can never unwrap.
            raise InvalidInputError("the public key is not the private key's public half")
        if public_key.key_size < MIN_RSA_BITS:
            raise InvalidInputError(
                f"RSA key is {public_key.key_size} bits; at least {MIN_RSA_BITS} required"
            )
        # Fail early on an algorithm this wrapper may never use either way.
        if algorithm is WrapAlgorithm.RSA1_5:
            require_unwrap_allowed(algorithm, allow_legacy_rsa1_5=allow_legacy_rsa1_5)
        self._key_id = key_id
        self._public_key = public_key
        self._private_key = private_key
        self._algorithm = algorithm
        self._allow_legacy = allow_legacy_rsa1_5

    @property
    def key_id(self) -> str:
        return self._key_id

    @property
    def algorithm(self) -> WrapAlgorithm:
        return self._algorithm

    @property
    def can_unwrap(self) -> bool:
        return self._private_key is not None

    def wrap(self, dek: DataKey) -> bytes:
        """RSA-encrypt ``dek`` with the public key.

        Raises:
            UnsupportedAlgorithmError: RSA1_5 (never used to wrap).
            InvalidInputError: the key material does not fit in one RSA block.
        """
        require_wrap_allowed(self._algorithm)
        limit = _max_rsa_message(_modulus_bytes(self._public_key), self._algorithm)
        if len(dek) > limit:
            raise InvalidInputError(
                f"{len(dek)} bytes of key material exceed the "
                f"{self._algorithm.value} limit of {limit}"
            )
        return self._public_key.encrypt(dek.reveal(), _rsa_padding(self._algorithm))

    def unwrap(self, wrapped: bytes) -> DataKey:
        """RSA-decrypt with the private key.

        Raises:
            UnsupportedAlgorithmError: RSA1_5 without ``allow_legacy_rsa1_5``.
            InvalidInputError: no private key (unwrap happens in the vault).
            IntegrityError: the ciphertext has the wrong length or its padding does not
                verify (not made by this key and algorithm). Every padding failure raises the
                same message, so failures cannot be told apart (Manger's attack).
        """
        require_unwrap_allowed(self._algorithm, allow_legacy_rsa1_5=self._allow_legacy)
        if self._private_key is None:
            raise InvalidInputError(
                f"no private key for {self._key_id}: unwrap happens in the vault"
            )
        modulus_bytes = _modulus_bytes(self._private_key)
        if len(wrapped) != modulus_bytes:
            raise IntegrityError(
                f"wrapped key is {len(wrapped)} bytes; {self._algorithm.value} with this key "
                f"produces {modulus_bytes}"
            )
        try:
            plain = self._private_key.decrypt(wrapped, _rsa_padding(self._algorithm))
        except ValueError:
            raise IntegrityError(f"unwrap with {self._key_id} failed: padding check") from None
        return DataKey(plain)

    def __repr__(self) -> str:
        half = "public+private" if self._private_key else "public"
        return (
            f"LocalRsaWrapper(key_id={self._key_id!r}, algorithm={self._algorithm.value}, {half})"
        )


class LocalAesKeyWrapper:
    """RFC 3394 AES key wrap (``A256KW``) with a 256-bit key-encryption key."""

    def __init__(self, key_id: str, kek: DataKey) -> None:
        """Raises InvalidInputError unless ``kek`` is 32 bytes (A256KW only, no A128KW/A192KW)."""
        if len(kek) != 32:
            raise InvalidInputError(f"A256KW needs a 32-byte key-encryption key, got {len(kek)}")
        self._key_id = key_id
        self._kek = kek

    @property
    def key_id(self) -> str:
        return self._key_id

    @property
    def algorithm(self) -> WrapAlgorithm:
        return WrapAlgorithm.A256KW

    def wrap(self, dek: DataKey) -> bytes:
        """RFC 3394-wrap ``dek`` under the KEK.

        Raises:
            InvalidInputError: the material is not a multiple of 8 bytes of at least 16.
        """
        if len(dek) < 16 or len(dek) % 8:
            raise InvalidInputError(
                f"A256KW wraps a multiple of 8 bytes, at least 16; got {len(dek)} bytes"
            )
        return aes_key_wrap(self._kek.reveal(), dek.reveal())

    def unwrap(self, wrapped: bytes) -> DataKey:
        """RFC 3394-unwrap ``wrapped``.

        Raises:
            IntegrityError: the integrity check fails or the length is not a KW output length.
        """
        if len(wrapped) < 24 or len(wrapped) % 8:
            raise IntegrityError(
                f"A256KW ciphertext must be a multiple of 8 bytes, at least 24; got {len(wrapped)}"
            )
        try:
            return DataKey(aes_key_unwrap(self._kek.reveal(), wrapped))
        except InvalidUnwrap:
            raise IntegrityError(f"unwrap with {self._key_id} failed: integrity check") from None

    def __repr__(self) -> str:
        return f"LocalAesKeyWrapper(key_id={self._key_id!r}, algorithm=A256KW)"
