"""azure-storage-blob's client-side encryption metadata (``encryptiondata``), read and rewritten.

Layout written by azure-storage-blob (Python, protocol 2.0) and .NET/Java (2.0, 2.1)::

    {"WrappedContentKey": {"KeyId": "<kid>", "EncryptedKey": "<base64>", "Algorithm": "<alg>"},
     "EncryptionAgent": {"Protocol": "2.0", "EncryptionAlgorithm": "AES_GCM_256"},
     "EncryptedRegionInfo": {"DataLength": 4194304, "NonceLength": 12},
     "KeyWrappingMetadata": {"EncryptionLibrary": "Python 12.31.1"}}

For 2.x the wrapped material is the protocol string padded with NUL to 8 bytes, then the
content key; the SDK checks that prefix after unwrapping, so a rewrap must keep it byte for
byte (``DekRecord.material_prefix``). A rewrite changes only ``KeyId``, ``EncryptedKey`` and
``Algorithm`` and keeps the writer's JSON formatting when it is one the standard library
reproduces, so the value differs in nothing else.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from shared.crypto import WrapAlgorithm
from shared.errors import InvalidInputError
from shared.stores._common import b64_encode, strict_b64_decode

ENCRYPTION_METADATA = "encryptiondata"
#: keyward's own metadata entry: why a blob's content key could not be unwrapped.
UNREADABLE_METADATA = "keywardunreadable"
#: keyward's own metadata entry: the wrap a rewrap replaced, kept until its version retires.
#: azure-storage-blob reads only ``encryptiondata`` and passes other entries through.
PREVIOUS_WRAP_METADATA = "keywardpreviouswrap"
#: Azure's limit on a blob's metadata: names and values together, at most 8 KiB.
MAX_METADATA_BYTES = 8 * 1024
SUPPORTED_PROTOCOLS = ("2.0", "2.1")
CONTENT_ALGORITHM = "AES_GCM_256"
#: azure-storage-blob pads the protocol to 8 bytes (AES key wrap needs multiples of 8).
PROTOCOL_PREFIX_SIZE = 8
#: JSON spellings writers use; the first that reproduces the stored text is kept.
_JSON_STYLES: tuple[dict[str, Any], ...] = (
    {},
    {"separators": (",", ":")},
    {"ensure_ascii": False},
    {"separators": (",", ":"), "ensure_ascii": False},
)


def protocol_prefix(protocol: str) -> bytes:
    return protocol.encode("ascii").ljust(PROTOCOL_PREFIX_SIZE, b"\0")


def find_entry(metadata: Mapping[str, str], name: str) -> str | None:
    """The stored spelling of metadata key ``name`` (metadata names are case-insensitive)."""
    return next((key for key in metadata if key.lower() == name), None)


@dataclass(frozen=True)
class BlobWrap:
    """The wrap fields of one blob's ``encryptiondata``; ``problem`` when unusable."""

    key_id: str
    algorithm: WrapAlgorithm | None
    wrapped: bytes
    protocol: str
    problem: str | None = None


def _field(data: Any, *path: str) -> Any:
    for name in path:
        if not isinstance(data, dict) or name not in data:
            raise InvalidInputError(f"encryptiondata lacks {'.'.join(path)}")
        data = data[name]
    return data


def parse_encryption_data(text: str) -> BlobWrap:
    """Parse ``encryptiondata``; never raises, a bad value comes back with ``problem``."""
    key_id, protocol = "", ""
    try:
        try:
            data = json.loads(text)
        except ValueError:
            raise InvalidInputError("encryptiondata is not valid JSON") from None
        raw_key_id = _field(data, "WrappedContentKey", "KeyId")
        key_id = raw_key_id if isinstance(raw_key_id, str) else ""
        protocol = str(_field(data, "EncryptionAgent", "Protocol"))
        if protocol == "1.0":
            raise InvalidInputError("protocol 1.0 is not supported; re-encrypt to 2.0")
        if protocol not in SUPPORTED_PROTOCOLS:
            raise InvalidInputError(f"unknown encryption protocol {protocol[:16]!r}")
        if _field(data, "EncryptionAgent", "EncryptionAlgorithm") != CONTENT_ALGORITHM:
            raise InvalidInputError(f"content encryption algorithm is not {CONTENT_ALGORITHM}")
        _field(data, "EncryptedRegionInfo", "DataLength")
        if not key_id:
            raise InvalidInputError("WrappedContentKey.KeyId is not a string")
        algorithm_name = _field(data, "WrappedContentKey", "Algorithm")
        algorithm = WrapAlgorithm.parse(str(algorithm_name))
        encrypted = _field(data, "WrappedContentKey", "EncryptedKey")
        wrapped = strict_b64_decode(encrypted if isinstance(encrypted, str) else "")
        if not wrapped:
            raise InvalidInputError("WrappedContentKey.EncryptedKey is empty")
    except InvalidInputError as error:
        return BlobWrap(key_id, None, b"", protocol, str(error))
    return BlobWrap(key_id, algorithm, wrapped, protocol)


def rewrite_encryption_data(text: str, key_id: str, algorithm: str, wrapped: bytes) -> str:
    """``text`` with only the wrapped content key, its key id and algorithm replaced.

    Raises:
        InvalidInputError: ``text`` is not an ``encryptiondata`` object.
    """
    try:
        original = json.loads(text)
        updated = json.loads(text)
    except ValueError:
        raise InvalidInputError("encryptiondata is not valid JSON") from None
    content_key = _field(updated, "WrappedContentKey")
    content_key.update(KeyId=key_id, EncryptedKey=b64_encode(wrapped), Algorithm=algorithm)
    style = next((s for s in _JSON_STYLES if json.dumps(original, **s) == text), None)
    return json.dumps(updated, **(style if style is not None else _JSON_STYLES[1]))


def previous_wrap_entry(wrap: BlobWrap) -> str:
    """The ``keywardpreviouswrap`` value: the replaced ``WrappedContentKey``, same field names.

    ``{"KeyId":"<kid>","EncryptedKey":"<base64>","Algorithm":"<alg>"}``, compact JSON (ASCII
    only, as metadata travels in HTTP headers). With the blob's ``encryptiondata`` it is
    everything needed to open the blob under the previous version: put it back as
    ``WrappedContentKey`` and azure-storage-blob decrypts with that version.
    """
    assert wrap.algorithm is not None
    return json.dumps(
        {"KeyId": wrap.key_id, "EncryptedKey": b64_encode(wrap.wrapped),
         "Algorithm": wrap.algorithm.value},
        separators=(",", ":"),
    )  # fmt: skip


def previous_key_id(text: str | None) -> str | None:
    """The key id in a ``keywardpreviouswrap`` value, or ``None`` (absent or unreadable)."""
    if not text:
        return None
    try:
        key_id = json.loads(text).get("KeyId")
    except (ValueError, AttributeError):
        return None
    return key_id if isinstance(key_id, str) and key_id else None


def metadata_size(metadata: Mapping[str, str]) -> int:
    """Bytes Azure counts against :data:`MAX_METADATA_BYTES` (names and values)."""
    return sum(len(name.encode()) + len(value.encode()) for name, value in metadata.items())
