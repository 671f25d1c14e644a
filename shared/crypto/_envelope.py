"""Envelope encryption of records under a DEK: AES-256-GCM with bound associated data.

Wire format, version 1 (pinned by ``tests/crypto/test_envelope.py::test_ciphertext_wire_format``)::

    +---------+-------------------+------------------------------+
    | 0x01    | nonce (12 bytes)  | ciphertext || tag (16 bytes) |
    +---------+-------------------+------------------------------+

The associated data is never stored; both sides rebuild it from what the caller knows::

    b"keyward/envelope" || version (1 byte)
    || len(dek_id) (4 bytes, big endian) || dek_id (UTF-8)
    || len(context) (4 bytes, big endian) || context

so a ciphertext moved to another record (other DEK id) or another context fails to open.
Length prefixes make the encoding injective: no two (dek_id, context) pairs collide.
"""

from __future__ import annotations

import os
import struct

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from shared.crypto._data_key import DEK_SIZE, DataKey
from shared.errors import IntegrityError, InvalidInputError

ENVELOPE_VERSION = 1
NONCE_SIZE = 12
TAG_SIZE = 16
_HEADER_SIZE = 1 + NONCE_SIZE
#: Smallest well-formed envelope: header plus a tag over an empty plaintext.
MIN_ENVELOPE_SIZE = _HEADER_SIZE + TAG_SIZE
#: GCM's per-invocation plaintext limit is 2^39 - 256 bits; records are far smaller.
MAX_PLAINTEXT_SIZE = 2**31
_AAD_LABEL = b"keyward/envelope"


def associated_data(dek_id: str, context: bytes, version: int = ENVELOPE_VERSION) -> bytes:
    """The AAD that binds an envelope to its DEK id, the caller's context and the version.

    Raises:
        InvalidInputError: ``dek_id`` is not encodable as UTF-8 (a lone surrogate), or
            ``context`` is not bytes.
    """
    if not isinstance(dek_id, str):
        raise InvalidInputError("dek_id must be text")
    if not isinstance(context, bytes | bytearray | memoryview):
        raise InvalidInputError("context must be bytes")
    try:
        encoded_id = dek_id.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidInputError("dek_id is not valid Unicode text") from None
    return b"".join(
        (
            _AAD_LABEL,
            bytes([version]),
            struct.pack(">I", len(encoded_id)),
            encoded_id,
            struct.pack(">I", len(context)),
            context,
        )
    )


def aes256gcm_encrypt(key: bytes, nonce: bytes, plaintext: bytes, aad: bytes) -> bytes:
    """Raw AES-256-GCM with a 96-bit nonce and 128-bit tag: returns ciphertext || tag.

    Raises:
        InvalidInputError: the key is not 32 bytes or the nonce not 12.
    """
    _check_gcm_parameters(key, nonce)
    return AESGCM(key).encrypt(nonce, plaintext, aad)


def aes256gcm_decrypt(key: bytes, nonce: bytes, ciphertext_and_tag: bytes, aad: bytes) -> bytes:
    """Raw AES-256-GCM open.

    Raises:
        InvalidInputError: the key is not 32 bytes or the nonce not 12.
        IntegrityError: the tag does not verify (tampered, truncated, wrong key or AAD).
    """
    _check_gcm_parameters(key, nonce)
    if len(ciphertext_and_tag) < TAG_SIZE:
        raise IntegrityError("ciphertext is shorter than the authentication tag")
    try:
        return AESGCM(key).decrypt(nonce, ciphertext_and_tag, aad)
    except InvalidTag:
        raise IntegrityError("authentication failed: tampered, truncated or wrong key") from None


def _check_gcm_parameters(key: bytes, nonce: bytes) -> None:
    if len(key) != DEK_SIZE:
        raise InvalidInputError(f"AES-256-GCM needs a {DEK_SIZE}-byte key, got {len(key)} bytes")
    if len(nonce) != NONCE_SIZE:
        raise InvalidInputError(f"nonce must be {NONCE_SIZE} bytes, got {len(nonce)}")


def seal(dek: DataKey, plaintext: bytes, *, dek_id: str, context: bytes = b"") -> bytes:
    """Encrypt ``plaintext`` under ``dek``, bound to ``dek_id`` and ``context``.

    Raises:
        InvalidInputError: the DEK is not 32 bytes or is wiped, the plaintext is too large,
            or ``dek_id`` / ``context`` are not text / bytes.
    """
    if len(plaintext) > MAX_PLAINTEXT_SIZE:
        raise InvalidInputError(f"plaintext exceeds {MAX_PLAINTEXT_SIZE} bytes")
    nonce = os.urandom(NONCE_SIZE)
    body = aes256gcm_encrypt(dek.reveal(), nonce, plaintext, associated_data(dek_id, context))
    return bytes([ENVELOPE_VERSION]) + nonce + body


def open_envelope(dek: DataKey, envelope: bytes, *, dek_id: str, context: bytes = b"") -> bytes:
    """Decrypt an envelope made by :func:`seal`.

    Raises:
        InvalidInputError: unknown format version (misuse, not tampering), or a DEK that is
            not 32 bytes or is wiped.
        IntegrityError: truncated, tampered, wrong DEK, wrong DEK id or wrong context.
    """
    if not envelope:
        raise IntegrityError("envelope is empty")
    version = envelope[0]
    if version != ENVELOPE_VERSION:
        raise InvalidInputError(f"unknown envelope format version {version}")
    if len(envelope) < MIN_ENVELOPE_SIZE:
        raise IntegrityError(
            f"envelope is {len(envelope)} bytes; a well-formed one has at least {MIN_ENVELOPE_SIZE}"
        )
    nonce = envelope[1:_HEADER_SIZE]
    return aes256gcm_decrypt(
        dek.reveal(), nonce, envelope[_HEADER_SIZE:], associated_data(dek_id, context, version)
    )
