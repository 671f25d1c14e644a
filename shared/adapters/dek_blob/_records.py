"""Which blobs a scan for one key returns, and how a blob's wrap becomes a ``DekRecord``.

A blob belongs to key ``K`` when its ``KeyId`` is a version of ``K`` under any spelling
(Key Vault names are case-insensitive: ``/keys/Orders-KEK`` is ``/keys/orders-kek``). A blob
whose metadata is too broken to name a key at all (bad JSON, no ``KeyId``) is returned by
every scan with its problem set: it may be one of ours, and reporting it beats skipping it silently.
"""

from __future__ import annotations

from collections.abc import Mapping

from shared.adapters.dek_blob._format import (
    ENCRYPTION_METADATA,
    MAX_METADATA_BYTES,
    PREVIOUS_WRAP_METADATA,
    UNREADABLE_METADATA,
    BlobWrap,
    find_entry,
    metadata_size,
    previous_wrap_entry,
    protocol_prefix,
    rewrite_encryption_data,
)
from shared.stores._common import fold_key_ref, split_key_id
from shared.stores._protocol import DekRecord, ImmutableCopy, Rewrap


def claims(wrap: BlobWrap, folded_key_ref: str) -> bool:
    """Whether a scan for the key ``folded_key_ref`` (``fold_key_ref``) must return this blob."""
    if not wrap.key_id:
        return wrap.problem is not None
    split = split_key_id(wrap.key_id)
    if split is not None:
        return split[0].lower() == folded_key_ref
    return fold_key_ref(wrap.key_id) == folded_key_ref


def immutable_copy(
    ref: str,
    key_id: str,
    *,
    snapshot: str | None,
    version_id: str | None,
    is_current_version: bool | None,
    deleted: bool | None,
) -> ImmutableCopy | None:
    """What a listed blob item is: ``None`` for the live blob (rewrappable), else the copy.

    A listing with ``include=["snapshots", "versions", "deleted"]`` returns the live blob
    (no snapshot; no version id, or the current version), snapshots, previous versions
    (a version id that is not current) and soft-deleted blobs of each kind.
    """
    if snapshot:
        return ImmutableCopy(ref, key_id, snapshot=snapshot, deleted=bool(deleted))
    if version_id and not is_current_version:
        return ImmutableCopy(ref, key_id, version_id=version_id, deleted=bool(deleted))
    if deleted:
        return ImmutableCopy(ref, key_id, version_id=version_id, deleted=True)
    return None


def blob_record(
    ref: str, container: str, etag: str, wrap: BlobWrap, previous_key_id: str | None = None
) -> DekRecord:
    problem = wrap.problem
    if problem is None and split_key_id(wrap.key_id) is None:
        problem = f"key id {wrap.key_id!r} is not a versioned key id"
    sound = problem is None
    return DekRecord(
        ref=ref,
        partition=container,
        etag=etag,
        key_id=wrap.key_id,
        algorithm=wrap.algorithm if sound else None,
        wrapped=wrap.wrapped if sound else b"",
        kcv=None,
        material_prefix=protocol_prefix(wrap.protocol) if sound else b"",
        problem=problem,
        previous_key_id=previous_key_id,
    )


def same_etag(first: str, second: str) -> bool:
    """Listings give ETags bare, response headers quoted: compare the values."""
    return first.strip('"') == second.strip('"')


def in_blob_spelling(new_key_id: str, old_key_id: str) -> str:
    """``new_key_id`` spelt as the blob already spells its key: only the version changes.

    Key Vault names are case-insensitive, but azure-storage-blob compares the key-encryption
    key's ``get_kid()`` with the stored ``KeyId`` as an exact string (``_encryption.py``,
    ``_validate_and_unwrap_cek``). An application whose KEK reports its own spelling of the
    vault and key name must still find that spelling after keyward rewraps its blob.
    """
    old_ref, _, _ = old_key_id.rpartition("/")
    new_ref, _, version = new_key_id.rpartition("/")
    if old_ref and old_ref.lower() == new_ref.lower():
        return f"{old_ref}/{version}"
    return new_key_id


def rewrapped_metadata(metadata: Mapping[str, str], rewrap: Rewrap) -> dict[str, str] | str:
    """The complete metadata to write for ``rewrap``, or why it must not be written.

    Every other entry byte for byte; ``encryptiondata`` with the new wrap; the wrap it had
    (the record as read) as ``keywardpreviouswrap``; keyward's unreadable marker dropped. A
    result past Azure's 8 KiB metadata limit is refused: the previous wrap is never dropped
    to make room (an RSA 4096 wrap makes the entry about 0.8 KiB).
    """
    record = rewrap.record
    entry = find_entry(metadata, ENCRYPTION_METADATA)
    if entry is None:
        return "encryptiondata vanished"
    replaced = (UNREADABLE_METADATA, PREVIOUS_WRAP_METADATA)
    updated = {k: v for k, v in metadata.items() if k.lower() not in replaced}
    key_id = in_blob_spelling(rewrap.key_id, record.key_id)
    updated[entry] = rewrite_encryption_data(
        metadata[entry], key_id, rewrap.algorithm.value, rewrap.wrapped
    )
    kept = BlobWrap(record.key_id, record.algorithm, record.wrapped, protocol="")
    updated[PREVIOUS_WRAP_METADATA] = previous_wrap_entry(kept)
    if metadata_size(updated) > MAX_METADATA_BYTES:
        return "metadata with the previous wrap would pass Azure's 8 KiB limit"
    return updated
