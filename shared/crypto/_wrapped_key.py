"""A wrapped DEK that says what it is: format version, versioned key id, algorithm, KCV.

Serialized form, version 1 (pinned by ``tests/crypto/test_wrapped_key.py``): compact JSON
with sorted keys and URL-safe unpadded base64 for the bytes::

    {"alg":"RSA-OAEP-256","kcv":"<16 hex>","kid":"https://.../keys/name/version","v":1,"wk":"..."}

JSON (not a binary layout) because the record lives in Table entities and queue messages
that operators read, and a versioned key id is long text anyway.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass
from typing import Any

from shared.crypto._algorithms import WrapAlgorithm
from shared.crypto._data_key import KCV_SIZE
from shared.crypto._key_id import is_valid_key_name, is_valid_key_version
from shared.errors import InvalidInputError

WRAPPED_KEY_FORMAT_VERSION = 1
_KCV_PATTERN = re.compile(rf"^[0-9a-f]{{{2 * KCV_SIZE}}}$")
_MAX_WRAPPED_SIZE = 1024
#: A serialized record is a few hundred bytes; anything far larger is not one.
_MAX_RECORD_SIZE = 8192
_FIELDS = frozenset({"alg", "kcv", "kid", "v", "wk"})


def b64url_encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64_decode_any(text: str) -> bytes:
    """Decode base64url or standard base64, padded or not (Key Vault answers in both).

    Raises:
        InvalidInputError: not base64 at all.
    """
    if not isinstance(text, str):
        raise InvalidInputError("expected base64 text")
    cleaned = text.strip()
    if not re.fullmatch(r"[A-Za-z0-9+/_-]*={0,2}", cleaned):
        raise InvalidInputError("value is not base64 or base64url")
    cleaned = cleaned.rstrip("=").replace("+", "-").replace("/", "_")
    try:
        return base64.urlsafe_b64decode(cleaned + "=" * (-len(cleaned) % 4))
    except (binascii.Error, ValueError):
        raise InvalidInputError("value is not valid base64") from None


def _check_versioned_key_id(key_id: object) -> None:
    """Shape check only: https, a host, ``/keys/{name}/{version}``. Which hosts are trusted is
    the vault allow-list's decision at the time of use (development origins included)."""
    if not isinstance(key_id, str) or not key_id.startswith("https://"):
        raise InvalidInputError("key_id must be a full https key id")
    if len(key_id) > 2048 or re.search(r"[\x00-\x20\x7f-\x9f\\?#@]", key_id):
        raise InvalidInputError("key_id has characters no Key Vault key id contains")
    host, _, path = key_id[len("https://") :].partition("/")
    segments = path.split("/")
    if (
        not host
        or len(segments) != 3
        or segments[0] != "keys"
        or not is_valid_key_name(segments[1])
        or not is_valid_key_version(segments[2])
    ):
        raise InvalidInputError("key_id must be a versioned key id: https://host/keys/name/version")


def _unique_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # Duplicate names are ambiguous (parsers disagree on which wins): refuse them.
    result = dict(pairs)
    if len(result) != len(pairs):
        raise InvalidInputError("wrapped key record repeats a field")
    return result


@dataclass(frozen=True)
class WrappedKey:
    """A DEK wrapped under one versioned key-encryption key."""

    key_id: str
    algorithm: WrapAlgorithm
    wrapped: bytes
    kcv: str
    format_version: int = WRAPPED_KEY_FORMAT_VERSION

    def __post_init__(self) -> None:
        if self.format_version != WRAPPED_KEY_FORMAT_VERSION:
            raise InvalidInputError(f"unknown wrapped key format version {self.format_version}")
        if not isinstance(self.algorithm, WrapAlgorithm):
            raise InvalidInputError("algorithm must be a WrapAlgorithm")
        if not isinstance(self.wrapped, bytes):
            raise InvalidInputError("wrapped must be bytes")
        if not 0 < len(self.wrapped) <= _MAX_WRAPPED_SIZE:
            raise InvalidInputError(f"wrapped key is {len(self.wrapped)} bytes; expected 1..1024")
        if not isinstance(self.kcv, str) or not _KCV_PATTERN.fullmatch(self.kcv):
            raise InvalidInputError("kcv must be 16 lowercase hexadecimal characters")
        _check_versioned_key_id(self.key_id)

    def to_dict(self) -> dict[str, Any]:
        return {
            "alg": self.algorithm.value,
            "kcv": self.kcv,
            "kid": self.key_id,
            "v": self.format_version,
            "wk": b64url_encode(self.wrapped),
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_dict(cls, data: Any) -> WrappedKey:
        """Rebuild from :meth:`to_dict` output.

        Raises:
            InvalidInputError: missing fields, wrong types, unknown version or algorithm.
        """
        if not isinstance(data, dict):
            raise InvalidInputError("wrapped key record must be an object")
        missing = _FIELDS - data.keys()
        if missing:
            raise InvalidInputError(f"wrapped key record lacks {sorted(missing)}")
        extra = data.keys() - _FIELDS
        if extra:
            raise InvalidInputError(f"wrapped key record has unknown fields {sorted(extra)}")
        version = data["v"]
        if not isinstance(version, int) or isinstance(version, bool):
            raise InvalidInputError("wrapped key record version must be an integer")
        if version != WRAPPED_KEY_FORMAT_VERSION:
            raise InvalidInputError(f"unknown wrapped key format version {version}")
        for name in ("alg", "kcv", "kid", "wk"):
            if not isinstance(data[name], str):
                raise InvalidInputError(f"wrapped key record field {name!r} must be a string")
        return cls(
            key_id=data["kid"],
            algorithm=WrapAlgorithm.parse(data["alg"]),
            wrapped=b64_decode_any(data["wk"]),
            kcv=data["kcv"],
            format_version=version,
        )

    @classmethod
    def from_json(cls, text: str | bytes) -> WrappedKey:
        """Parse :meth:`to_json` output.

        Raises:
            InvalidInputError: not JSON, too large, duplicate or unknown fields, or any
                :meth:`from_dict` refusal.
        """
        if not isinstance(text, str | bytes):
            raise InvalidInputError("wrapped key record must be text")
        if len(text) > _MAX_RECORD_SIZE:
            raise InvalidInputError(f"wrapped key record exceeds {_MAX_RECORD_SIZE} bytes")
        try:
            data = json.loads(text, object_pairs_hook=_unique_object)
        except InvalidInputError:
            raise
        except (ValueError, UnicodeDecodeError, RecursionError):
            raise InvalidInputError("wrapped key record is not valid JSON") from None
        return cls.from_dict(data)

    def __repr__(self) -> str:
        # The wrapped bytes are not secret, but they are noise in logs; the length suffices.
        return (
            f"WrappedKey(key_id={self.key_id!r}, algorithm={self.algorithm.value}, "
            f"wrapped=<{len(self.wrapped)} bytes>, kcv={self.kcv})"
        )
