"""Secret key material in a buffer that can be wiped, and its key check value.

Python cannot promise that no copy of a secret survives (``bytes`` are immutable and the
``cryptography`` API takes ``bytes``), so DataKey keeps the canonical copy in a ``bytearray``,
hands out short-lived ``bytes`` only to the primitive that needs them, and zeroes the buffer on
``wipe()`` / context exit. What it does promise: its ``repr``, ``str``, pickling and equality
never expose the bytes.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from types import TracebackType
from typing import NoReturn

from shared.errors import InvalidInputError

#: Size of a keyward data encryption key (AES-256).
DEK_SIZE = 32
#: Upper bound on wrapped material: an RSA-4096 OAEP-256 block holds at most 446 bytes.
MAX_KEY_MATERIAL_SIZE = 512
#: KCV length in bytes (hex-encoded to 16 characters). 64 bits identify a DEK among billions
#: with negligible collision odds while revealing nothing usable about it.
KCV_SIZE = 8
_KCV_LABEL = b"keyward/kcv/v1"


def key_check_value(material: bytes | bytearray | memoryview) -> str:
    """The KCV of ``material``: hex of HMAC-SHA256(material, label)[:8].

    Why HMAC and not the classic "encrypt a zero block": it is defined for any length of
    material (blob CEKs carry an 8-byte protocol prefix) and it is one-way.
    """
    digest = hmac.new(bytes(material), _KCV_LABEL, hashlib.sha256).digest()
    return digest[:KCV_SIZE].hex()


class DataKey:
    """Secret key material (a DEK, or a blob content key with its prefix).

    Create one with :meth:`generate` (32 random bytes from the OS CSPRNG) or
    :meth:`from_bytes`. Use it as a context manager, or call :meth:`wipe`, to zero it.
    """

    __slots__ = ("_buffer", "_wiped")

    def __init__(self, material: bytes | bytearray | memoryview) -> None:
        if len(material) > MAX_KEY_MATERIAL_SIZE:
            raise InvalidInputError(
                f"key material is {len(material)} bytes; at most {MAX_KEY_MATERIAL_SIZE} allowed"
            )
        self._buffer = bytearray(material)
        self._wiped = False

    @classmethod
    def generate(cls, size: int = DEK_SIZE) -> DataKey:
        """Fresh random key material from ``os.urandom`` (the OS CSPRNG).

        Raises:
            InvalidInputError: ``size`` outside 16..512 bytes.
        """
        if not 16 <= size <= MAX_KEY_MATERIAL_SIZE:
            raise InvalidInputError(f"data key size must be 16..{MAX_KEY_MATERIAL_SIZE} bytes")
        buffer = bytearray(os.urandom(size))
        key = cls(buffer)
        buffer[:] = b"\0" * size
        return key

    @classmethod
    def from_bytes(cls, material: bytes | bytearray | memoryview) -> DataKey:
        return cls(material)

    def __len__(self) -> int:
        return len(self._buffer)

    @property
    def wiped(self) -> bool:
        return self._wiped

    def reveal(self) -> bytes:
        """The key bytes, for handing to a primitive. Keep the result's lifetime short.

        Raises:
            InvalidInputError: the key has been wiped.
        """
        if self._wiped:
            raise InvalidInputError("this data key has been wiped")
        return bytes(self._buffer)

    @property
    def kcv(self) -> str:
        """Key check value: identifies this key without revealing it.

        Raises:
            InvalidInputError: the key has been wiped.
        """
        if self._wiped:
            raise InvalidInputError("this data key has been wiped")
        return key_check_value(self._buffer)

    def matches(self, other: DataKey) -> bool:
        """Constant-time comparison of two keys' material.

        Raises:
            InvalidInputError: either key has been wiped (a wiped key is all zeros and would
                otherwise "match" a zero key of the same length).
        """
        if self._wiped or other._wiped:
            raise InvalidInputError("this data key has been wiped")
        return hmac.compare_digest(self._buffer, other._buffer)

    def wipe(self) -> None:
        """Overwrite the buffer with zeros; the key is unusable afterwards."""
        for index in range(len(self._buffer)):
            self._buffer[index] = 0
        self._wiped = True

    def __enter__(self) -> DataKey:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.wipe()

    def __repr__(self) -> str:
        if self._wiped:
            return "DataKey(<wiped>)"
        return f"DataKey(size={len(self._buffer)}, kcv={self.kcv})"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        # Identity only: comparing secrets must be explicit (matches()), never accidental.
        return self is other

    __hash__ = object.__hash__

    def __reduce__(self) -> NoReturn:
        raise TypeError("DataKey cannot be pickled: key material never goes to disk or queues")
